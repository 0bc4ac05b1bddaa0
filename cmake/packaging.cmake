# SPDX-License-Identifier: MIT
# Debian packages with CPack (`make deb`, which configures with CMAKE_INSTALL_PREFIX=/usr):
#   libtxstats<soversion>  the shared library
#   libtxstats-dev         headers, libtxstats.a, the .so link, pkg-config and CMake files
#   txstats-server         the server, its man page, systemd unit, /etc/default file, openapi.json
set(_soversion ${PROJECT_VERSION_MAJOR}.${PROJECT_VERSION_MINOR})
set(_exact "(= ${PROJECT_VERSION})")

set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGE_NAME txstats)
set(CPACK_PACKAGE_VENDOR "libtxstats")
set(CPACK_PACKAGE_CONTACT "libtxstats maintainers <txstats@localhost>")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY
  "Exact statistics of money transactions over a sliding time window")
set(CPACK_RESOURCE_FILE_LICENSE ${PROJECT_SOURCE_DIR}/LICENSE)
set(CPACK_PACKAGING_INSTALL_PREFIX ${CMAKE_INSTALL_PREFIX})
set(CPACK_COMPONENTS_ALL library development server)
set(CPACK_DEB_COMPONENT_INSTALL ON)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_SECTION libs)
set(CPACK_DEBIAN_PACKAGE_PRIORITY optional)

set(CPACK_DEBIAN_LIBRARY_PACKAGE_NAME libtxstats${_soversion})
set(CPACK_DEBIAN_LIBRARY_PACKAGE_DEPENDS "libc6 (>= 2.34), libcjson1 (>= 1.7.15), libsodium23 (>= 1.0.18)")
set(CPACK_DEBIAN_LIBRARY_DESCRIPTION
  "Exact sliding-window statistics of money transactions (shared library)\n Thread-safe, O(1) statistics with a write-ahead journal and snapshots.")

set(CPACK_DEBIAN_DEVELOPMENT_PACKAGE_NAME libtxstats-dev)
set(CPACK_DEBIAN_DEVELOPMENT_PACKAGE_SECTION libdevel)
set(CPACK_DEBIAN_DEVELOPMENT_PACKAGE_DEPENDS "libtxstats${_soversion} ${_exact}, libcjson-dev, libsodium-dev, pkg-config")
set(CPACK_DEBIAN_DEVELOPMENT_DESCRIPTION
  "Exact sliding-window statistics of money transactions (development files)\n Header, static library, pkg-config file (libtxstats) and CMake package (txstats).")

set(CPACK_DEBIAN_SERVER_PACKAGE_NAME txstats-server)
set(CPACK_DEBIAN_SERVER_PACKAGE_SECTION net)
set(CPACK_DEBIAN_SERVER_PACKAGE_DEPENDS
  "libtxstats${_soversion} ${_exact}, libc6 (>= 2.34), libcivetweb1 (>= 1.15), libcjson1 (>= 1.7.15), librdkafka1 (>= 2.0)")
set(CPACK_DEBIAN_SERVER_PACKAGE_CONTROL_EXTRA ${PROJECT_SOURCE_DIR}/packaging/conffiles)
set(CPACK_DEBIAN_SERVER_DESCRIPTION
  "REST server for exact sliding-window statistics of money transactions\n txstats-server: civetweb HTTP API, dashboard, Prometheus metrics, systemd unit.")

include(CPack)
