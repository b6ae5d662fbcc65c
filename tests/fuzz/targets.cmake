# The fuzz targets: every tests/fuzz/fuzz_NAME.c defines
# LLVMFuzzerTestOneInput for one parser. Its seeds and regression inputs live
# in tests/fuzz/corpus/NAME/; a target may also draw on other folders
# (FM_FUZZ_SEEDS_NAME, relative to the source tree: test files and
# the bounce corpus in tests/corpus), each used when it exists.
# A target whose code has not landed yet (FM_FUZZ_NEEDS_NAME names the
# source file) is left out until it has.
set(FM_FUZZ_LIBS fm_server fm_admin fm_lists fm_db fm_mail fm_conf)

set(FM_FUZZ_NEEDS_conf conf/conf.c)
set(FM_FUZZ_NEEDS_addr mail/addr.c)
set(FM_FUZZ_NEEDS_data server/smtp_data.c)
set(FM_FUZZ_NEEDS_smtp server/smtp_in.c)
set(FM_FUZZ_NEEDS_msg mail/msg.c)
set(FM_FUZZ_NEEDS_mime mail/msg.c)
set(FM_FUZZ_NEEDS_footer lists/post.c)
set(FM_FUZZ_NEEDS_bounce lists/bounce.c)
set(FM_FUZZ_NEEDS_downgrade mail/downgrade.c)
set(FM_FUZZ_NEEDS_http server/http_parse.c)

set(FM_FUZZ_SEEDS_msg tests/golden tests/corpus/bounces)
set(FM_FUZZ_SEEDS_mime tests/golden tests/corpus/bounces)
set(FM_FUZZ_SEEDS_footer tests/golden tests/corpus/bounces)
set(FM_FUZZ_SEEDS_bounce tests/corpus/bounces)
set(FM_FUZZ_SEEDS_downgrade tests/golden tests/corpus/bounces)

file(GLOB fm_fuzz_all CONFIGURE_DEPENDS ${CMAKE_SOURCE_DIR}/tests/fuzz/fuzz_*.c)
set(FM_FUZZ_SOURCES "")
foreach(src ${fm_fuzz_all})
  get_filename_component(fname ${src} NAME_WE)
  string(REGEX REPLACE "^fuzz_" "" name ${fname})
  if(DEFINED FM_FUZZ_NEEDS_${name} AND NOT EXISTS ${CMAKE_SOURCE_DIR}/${FM_FUZZ_NEEDS_${name}})
    message(STATUS "fuzz target ${name}: left out until ${FM_FUZZ_NEEDS_${name}} exists")
    continue()
  endif()
  list(APPEND FM_FUZZ_SOURCES ${src})
endforeach()
