# Debug info kept apart from what ships (docs/packaging.md).
#
# Included from cmake/Install.cmake: ml_install_stripped(TARGET DESTINATION COMPONENT), called
# after install(TARGETS) of the same component, strips the installed file and gives it a
# .gnu_debuglink to its debug info, which goes into <prefix>/lib/debug/.build-id/xx/yyyy.debug
# in the component "dbg" (where gdb and Debian's debuginfo tools look for it).
# ML_STRIP_INSTALL=OFF installs the file as built.
#
# The install steps themselves (included by the install script, ML_STEP set):
#   strip   FILE INSTALLED: strips INSTALLED, links it to FILE.debug when FILE has debug info
#   install FILE DEST: installs FILE.debug as DEST/.build-id/xx/yyyy.debug, if FILE has debug info
# Both first bring FILE.debug (in the build tree, next to FILE) up to date with FILE. They need
# OBJCOPY and READELF.

if(ML_STEP)
  set(debug "${FILE}.debug")
  function(ml_run)
    execute_process(COMMAND ${ARGV} RESULT_VARIABLE rc ERROR_VARIABLE err)
    if(NOT rc EQUAL 0)
      message(FATAL_ERROR "SplitDebug: ${ARGV} failed: ${err}")
    endif()
  endfunction()

  execute_process(COMMAND ${READELF} -S --wide "${FILE}" OUTPUT_VARIABLE sections
                  COMMAND_ERROR_IS_FATAL ANY)
  if(NOT sections MATCHES "\\.debug_info")
    file(REMOVE "${debug}")
  elseif(NOT EXISTS "${debug}" OR "${FILE}" IS_NEWER_THAN "${debug}")
    # Compressed: a third of the size, and gdb and binutils read it as is.
    ml_run(${OBJCOPY} --only-keep-debug --compress-debug-sections=zlib "${FILE}" "${debug}")
  endif()

  if(ML_STEP STREQUAL "strip")
    message(STATUS "Stripping: ${INSTALLED}")
    # What Debian's dh_strip does to a shared library or a program.
    ml_run(${OBJCOPY} --strip-unneeded --remove-section=.comment "${INSTALLED}")
    if(EXISTS "${debug}")
      ml_run(${OBJCOPY} "--add-gnu-debuglink=${debug}" "${INSTALLED}")
    endif()
  elseif(ML_STEP STREQUAL "install")
    if(EXISTS "${debug}")
      execute_process(COMMAND ${READELF} -n "${debug}" OUTPUT_VARIABLE notes ERROR_QUIET
                      COMMAND_ERROR_IS_FATAL ANY)
      if(NOT notes MATCHES "Build ID: ([0-9a-f][0-9a-f])([0-9a-f]+)")
        message(FATAL_ERROR "SplitDebug: ${debug} has no build id")
      endif()
      file(INSTALL "${debug}" DESTINATION "${DEST}/.build-id/${CMAKE_MATCH_1}"
           RENAME "${CMAKE_MATCH_2}.debug")
    endif()
  else()
    message(FATAL_ERROR "SplitDebug: unknown ML_STEP '${ML_STEP}'")
  endif()
  return()
endif()

option(ML_STRIP_INSTALL "Install binaries stripped, their debug info apart (component dbg)" ON)
set(ML_SPLIT_DEBUG_SCRIPT ${CMAKE_CURRENT_LIST_FILE})

function(ml_install_stripped target destination component)
  if(NOT ML_STRIP_INSTALL)
    return()
  endif()
  if(NOT CMAKE_OBJCOPY OR NOT CMAKE_READELF)
    message(STATUS "No objcopy or readelf: ${target} is installed as built, not stripped")
    return()
  endif()
  # Runs after install(TARGETS) of the same component, on the installed copy (DESTDIR too).
  set(installed "\$ENV{DESTDIR}\${CMAKE_INSTALL_PREFIX}/${destination}/$<TARGET_FILE_NAME:${target}>")
  install(CODE "
    set(ML_STEP strip)
    set(FILE \"$<TARGET_FILE:${target}>\")
    set(INSTALLED \"${installed}\")
    set(OBJCOPY \"${CMAKE_OBJCOPY}\")
    set(READELF \"${CMAKE_READELF}\")
    include(\"${ML_SPLIT_DEBUG_SCRIPT}\")
    unset(ML_STEP)" COMPONENT ${component})
  install(CODE "
    set(ML_STEP install)
    set(FILE \"$<TARGET_FILE:${target}>\")
    set(DEST \"\${CMAKE_INSTALL_PREFIX}/lib/debug\")
    set(OBJCOPY \"${CMAKE_OBJCOPY}\")
    set(READELF \"${CMAKE_READELF}\")
    include(\"${ML_SPLIT_DEBUG_SCRIPT}\")
    unset(ML_STEP)" COMPONENT dbg)
endfunction()
