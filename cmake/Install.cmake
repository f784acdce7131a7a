# What `cmake --install` puts where, in the components the Debian packages are made of
# (cmake/Package.cmake, docs/packaging.md):
#   runtime  libmemberlist.so.0.x.y and the SONAME link libmemberlist.so.0   -> libmemberlist0
#   dev      header, libmemberlist.so link, pkg-config file, CMake package    -> libmemberlist-dev
#   agent    bin/memberlist-agent                                             -> memberlist-agent
#   dbg      lib/debug/.build-id/xx/yyyy.debug, the split debug info          -> memberlist-dbg
# Binaries are installed stripped (ML_STRIP_INSTALL, cmake/SplitDebug.cmake).
include(${CMAKE_CURRENT_LIST_DIR}/SplitDebug.cmake)

option(ML_INSTALL_RPATH
  "Installed programs find the library through an \$ORIGIN-relative RUNPATH (OFF for /usr)" ON)

# ---- the library ---------------------------------------------------------------------------
install(TARGETS memberlist EXPORT memberlistTargets
  LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR} COMPONENT runtime NAMELINK_COMPONENT dev
  ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR} COMPONENT dev
  RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR} COMPONENT runtime
  INCLUDES DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
ml_install_stripped(memberlist ${CMAKE_INSTALL_LIBDIR} runtime)
install(FILES ${PROJECT_SOURCE_DIR}/include/memberlist.h DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}
  COMPONENT dev)

# pkg-config: written at install time, so that `cmake --install --prefix P` gets prefix=P.
# A relative --prefix is taken from the current directory, as cmake --install does.
install(CODE "
  get_filename_component(CMAKE_INSTALL_PREFIX \"\${CMAKE_INSTALL_PREFIX}\" ABSOLUTE)
  set(PROJECT_VERSION \"${PROJECT_VERSION}\")
  set(CMAKE_INSTALL_LIBDIR \"${CMAKE_INSTALL_LIBDIR}\")
  set(CMAKE_INSTALL_INCLUDEDIR \"${CMAKE_INSTALL_INCLUDEDIR}\")
  set(ML_PC \"\$ENV{DESTDIR}\${CMAKE_INSTALL_PREFIX}/${CMAKE_INSTALL_LIBDIR}/pkgconfig/memberlist.pc\")
  message(STATUS \"Installing: \${ML_PC}\")
  configure_file(\"${PROJECT_SOURCE_DIR}/pkgconfig/memberlist.pc.in\" \"\${ML_PC}\" @ONLY)
" COMPONENT dev)

# CMake package: find_package(memberlist) -> memberlist::memberlist
set(ML_CMAKE_DIR ${CMAKE_INSTALL_LIBDIR}/cmake/memberlist)
install(EXPORT memberlistTargets NAMESPACE memberlist:: DESTINATION ${ML_CMAKE_DIR}
  COMPONENT dev)
configure_package_config_file(${PROJECT_SOURCE_DIR}/cmake/memberlistConfig.cmake.in
  ${PROJECT_BINARY_DIR}/cmake/memberlistConfig.cmake INSTALL_DESTINATION ${ML_CMAKE_DIR})
# docs/abi.md, "Compatibility promise": within one ABI major version (the SONAME's number; 0
# before 1.0) releases only add, so any later release of the same major is compatible.
write_basic_package_version_file(${PROJECT_BINARY_DIR}/cmake/memberlistConfigVersion.cmake
  COMPATIBILITY SameMajorVersion)
install(FILES ${PROJECT_BINARY_DIR}/cmake/memberlistConfig.cmake
              ${PROJECT_BINARY_DIR}/cmake/memberlistConfigVersion.cmake
        DESTINATION ${ML_CMAKE_DIR} COMPONENT dev)

# ---- the agent -----------------------------------------------------------------------------
if(TARGET memberlist-agent)
  if(ML_INSTALL_RPATH)
    # bin/ -> lib/ relative to the program itself, so any prefix works without ldconfig.
    if(IS_ABSOLUTE "${CMAKE_INSTALL_LIBDIR}")
      set(ml_rpath "${CMAKE_INSTALL_LIBDIR}")
    else()
      file(RELATIVE_PATH ml_rel "/p/${CMAKE_INSTALL_BINDIR}" "/p/${CMAKE_INSTALL_LIBDIR}")
      set(ml_rpath "\$ORIGIN/${ml_rel}")
    endif()
    set_target_properties(memberlist-agent PROPERTIES INSTALL_RPATH "${ml_rpath}")
  endif()
  install(TARGETS memberlist-agent RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR} COMPONENT agent)
  ml_install_stripped(memberlist-agent ${CMAKE_INSTALL_BINDIR} agent)
endif()
