# SPDX-License-Identifier: MIT
# Included by libtxstats/CMakeLists.txt: beside a shared libtxstats, a static libtxstats.a from the
# same sources (target txstats::txstats_static), installed and exported too, so that
# `pkg-config --static` and find_package(txstats) users can link it.
if(NOT BUILD_SHARED_LIBS OR NOT TXSTATS_INSTALL_STATIC)
  return()
endif()
get_target_property(_txstats_sources txstats SOURCES)
add_library(txstats_static STATIC ${_txstats_sources})
add_library(txstats::txstats_static ALIAS txstats_static)
target_include_directories(txstats_static PUBLIC
  $<BUILD_INTERFACE:${CMAKE_CURRENT_SOURCE_DIR}/include>
  $<INSTALL_INTERFACE:${CMAKE_INSTALL_INCLUDEDIR}>)
target_link_libraries(txstats_static PRIVATE PkgConfig::CJSON PkgConfig::SODIUM PUBLIC Threads::Threads)
set_target_properties(txstats_static PROPERTIES
  OUTPUT_NAME txstats
  C_VISIBILITY_PRESET hidden
  POSITION_INDEPENDENT_CODE ON)
install(TARGETS txstats_static EXPORT txstats-targets
  ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR} COMPONENT development)
