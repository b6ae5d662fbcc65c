# Replays every fuzz corpus through its target as a normal ctest program
# (fuzz/replay_NAME), without libFuzzer: in the plain build and, under ASan
# and UBSan, in the sanitizer build. Included from tests/CMakeLists.txt.
include(${CMAKE_SOURCE_DIR}/tests/fuzz/targets.cmake)
foreach(src ${FM_FUZZ_SOURCES})
  get_filename_component(fname ${src} NAME_WE)
  string(REGEX REPLACE "^fuzz_" "" name ${fname})
  add_executable(replay_${name} ${src} ${CMAKE_SOURCE_DIR}/tests/fuzz/replay.c)
  target_link_libraries(replay_${name} PRIVATE ${FM_FUZZ_LIBS})
  set(dirs ${CMAKE_SOURCE_DIR}/tests/fuzz/corpus/${name})
  foreach(extra ${FM_FUZZ_SEEDS_${name}})
    if(EXISTS ${CMAKE_SOURCE_DIR}/${extra})
      list(APPEND dirs ${CMAKE_SOURCE_DIR}/${extra})
    endif()
  endforeach()
  add_test(NAME fuzz/replay_${name} COMMAND replay_${name} ${dirs})
  set_tests_properties(fuzz/replay_${name} PROPERTIES LABELS fuzz TIMEOUT 600)
endforeach()
