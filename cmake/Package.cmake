# Debian packages through CPack, one per install component (cmake/Install.cmake):
#   libmemberlist0     the shared library and its SONAME link, with a shlibs file and ldconfig
#   libmemberlist-dev  header, libmemberlist.so, pkg-config file, CMake package
#   memberlist-agent   the agent program
#   memberlist-dbg     the debug info split off the two above
# Build them with scripts/test-packages.sh (which also installs and tries them), or by hand:
#   cmake -S . -B build-deb -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_INSTALL_PREFIX=/usr \
#         -DML_INSTALL_RPATH=OFF -DML_BUILD_TESTS=OFF
#   cmake --build build-deb -j2 && (cd build-deb && cpack -G DEB)
# See docs/packaging.md.
if(NOT CMAKE_INSTALL_PREFIX STREQUAL "/usr")
  # GNUInstallDirs picks the multiarch libdir (lib/x86_64-linux-gnu) only for /usr.
  message(STATUS "Debian packages want -DCMAKE_INSTALL_PREFIX=/usr (now ${CMAKE_INSTALL_PREFIX})")
endif()

set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGE_NAME libmemberlist)
set(CPACK_PACKAGE_VENDOR libmemberlist)
set(CPACK_PACKAGE_CONTACT "libmemberlist maintainers <maintainers@libmemberlist.invalid>")
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
# No CPACK_PACKAGE_DESCRIPTION_SUMMARY: each package's synopsis is its description's first line.
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
# Install into the staging tree with DESTDIR, so that CMAKE_INSTALL_PREFIX stays /usr in what
# is written at install time (the pkg-config file's prefix).
set(CPACK_SET_DESTDIR ON)

set(CPACK_DEB_COMPONENT_INSTALL ON)
set(CPACK_COMPONENTS_ALL runtime dev agent dbg)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_RELEASE 1)
set(CPACK_DEBIAN_PACKAGE_LICENSE MPL-2.0)

# Dependencies on other Debian packages come from dpkg-shlibdeps; between these packages from
# the component dependencies (Depends: libmemberlist0 (= version)).
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
set(CPACK_DEBIAN_ENABLE_COMPONENT_DEPENDS ON)
# The shlibs file of libmemberlist0: within ABI 0 releases only add (docs/abi.md), so a program
# built against this version runs with any later one.
set(CPACK_DEBIAN_PACKAGE_GENERATE_SHLIBS ON)
set(CPACK_DEBIAN_PACKAGE_GENERATE_SHLIBS_POLICY ">=")
# The agent links libmemberlist.so.0, which is in the runtime package's staging tree (dpkg-shlibdeps
# runs in the agent's; both are under _CPack_Packages/Linux/DEB/<name>/).
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS_PRIVATE_DIRS "../runtime/usr/${CMAKE_INSTALL_LIBDIR}")

set(CPACK_DEBIAN_RUNTIME_PACKAGE_NAME libmemberlist${ML_ABI_VERSION})
set(CPACK_DEBIAN_RUNTIME_PACKAGE_SECTION libs)
set(CPACK_COMPONENT_RUNTIME_DESCRIPTION "cluster membership and failure detection - shared library
libmemberlist is a C++20 implementation of hashicorp/memberlist (SWIM gossip with
Lifeguard) behind a stable C ABI. This package holds the shared library.")

set(CPACK_DEBIAN_DEV_PACKAGE_NAME libmemberlist-dev)
set(CPACK_DEBIAN_DEV_PACKAGE_SECTION libdevel)
set(CPACK_COMPONENT_DEV_DEPENDS runtime)
set(CPACK_COMPONENT_DEV_DESCRIPTION "cluster membership and failure detection - development files
The C header memberlist.h, the libmemberlist.so link, a pkg-config file (memberlist) and a
CMake package (find_package(memberlist), target memberlist::memberlist).")

set(CPACK_DEBIAN_AGENT_PACKAGE_NAME memberlist-agent)
set(CPACK_DEBIAN_AGENT_PACKAGE_SECTION net)
set(CPACK_COMPONENT_AGENT_DEPENDS runtime)
set(CPACK_COMPONENT_AGENT_DESCRIPTION "cluster membership and failure detection - agent
memberlist-agent runs one libmemberlist node (join, gossip, failure detection) and a
loopback demo cluster.")

set(CPACK_DEBIAN_DBG_PACKAGE_NAME memberlist-dbg)
set(CPACK_DEBIAN_DBG_PACKAGE_SECTION debug)
set(CPACK_DEBIAN_DBG_PACKAGE_PRIORITY extra)
# Debug info is no program: nothing for dpkg-shlibdeps to read.
set(CPACK_DEBIAN_DBG_PACKAGE_SHLIBDEPS OFF)
set(CPACK_COMPONENT_DBG_DEPENDS runtime)
set(CPACK_COMPONENT_DBG_DESCRIPTION "cluster membership and failure detection - debug info
The debug info of libmemberlist and memberlist-agent, under /usr/lib/debug/.build-id,
where gdb finds it.")

include(CPack)
