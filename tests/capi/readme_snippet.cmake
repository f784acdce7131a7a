# Fails unless README.md contains FILE verbatim: the README's example is the tested code.
# cmake -DREADME=<README.md> -DFILE=<file> -P readme_snippet.cmake
file(READ ${README} readme)
file(READ ${FILE} code)
string(FIND "${readme}" "```c\n${code}```" at)
if(at EQUAL -1)
  message(FATAL_ERROR "${README} does not contain ${FILE} verbatim in a ```c block")
endif()
