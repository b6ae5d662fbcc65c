# The fuzz targets: every tests/fuzz/fuzz_NAME.c defines
# LLVMFuzzerTestOneInput for one parser. Its seeds and regression inputs live
# in tests/fuzz/corpus/NAME/; a target may also draw on a folder of the shared
# corpus (../shared/corpus/...), named here, when that folder exists.
file(GLOB FM_FUZZ_SOURCES CONFIGURE_DEPENDS ${CMAKE_SOURCE_DIR}/tests/fuzz/fuzz_*.c)
set(FM_FUZZ_LIBS fm_server fm_admin fm_lists fm_db fm_mail fm_conf)
set(FM_SHARED_CORPUS ${CMAKE_SOURCE_DIR}/../shared/corpus)
# name -> shared corpus folders used as extra seeds (messages)
set(FM_FUZZ_SHARED_msg bounces)
set(FM_FUZZ_SHARED_mime bounces)
set(FM_FUZZ_SHARED_bounce bounces)
set(FM_FUZZ_SHARED_footer bounces)
