# SPDX-License-Identifier: Apache-2.0
# Install layout (`cmake --install`) and the Debian package (`cpack -G DEB`): binaries, the
# systemd unit, the example configuration as a conffile, man pages and the operations guide.
# Included at the end of the top-level CMakeLists.txt, after every target is defined.
include(GNUInstallDirs)

set(TUNDRA_CONFIG_DIR "/etc/tundra" CACHE PATH
    "Absolute directory for tundra.conf (DESTDIR applies; the .deb always uses /etc/tundra)")
set(TUNDRA_SYSTEMD_UNIT_DIR "lib/systemd/system" CACHE STRING
    "systemd system unit directory, relative to the install prefix")

foreach(program tundrad tundra-cli tundra-bench)
    if(TARGET ${program})
        install(TARGETS ${program} RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
    endif()
endforeach()

# The configuration file lives in /etc whatever the prefix, like every Debian service's.
install(FILES ${PROJECT_SOURCE_DIR}/packaging/tundra.conf DESTINATION ${TUNDRA_CONFIG_DIR})

# The unit names /usr/bin/tundrad and /etc/tundra/tundra.conf. At install time (CPack runs the
# same step with prefix /usr) they are rewritten to the real prefix and configuration path, so
# `cmake --install build --prefix /usr/local` gets a unit that starts the right binary.
install(CODE "
    set(TUNDRA_UNIT_SOURCE \"${PROJECT_SOURCE_DIR}/packaging/tundrad.service\")
    set(TUNDRA_UNIT_STAGE \"${PROJECT_BINARY_DIR}/packaging-stage\")
    set(TUNDRA_UNIT_CONFIG \"${TUNDRA_CONFIG_DIR}/tundra.conf\")
    set(TUNDRA_UNIT_BINDIR \"${CMAKE_INSTALL_BINDIR}\")
    set(TUNDRA_UNIT_DIR \"${TUNDRA_SYSTEMD_UNIT_DIR}\")
")
install(CODE [[
    file(READ "${TUNDRA_UNIT_SOURCE}" tundra_unit)
    string(REPLACE "/usr/bin/tundrad" "${CMAKE_INSTALL_PREFIX}/${TUNDRA_UNIT_BINDIR}/tundrad"
           tundra_unit "${tundra_unit}")
    string(REPLACE "/etc/tundra/tundra.conf" "${TUNDRA_UNIT_CONFIG}" tundra_unit "${tundra_unit}")
    file(WRITE "${TUNDRA_UNIT_STAGE}/tundrad.service" "${tundra_unit}")
    file(INSTALL DESTINATION "${CMAKE_INSTALL_PREFIX}/${TUNDRA_UNIT_DIR}" TYPE FILE
         FILES "${TUNDRA_UNIT_STAGE}/tundrad.service")
]])

install(FILES ${PROJECT_SOURCE_DIR}/docs/man/tundra-cli.1 DESTINATION ${CMAKE_INSTALL_MANDIR}/man1)
install(FILES ${PROJECT_SOURCE_DIR}/docs/man/tundra.conf.5 DESTINATION ${CMAKE_INSTALL_MANDIR}/man5)
install(FILES ${PROJECT_SOURCE_DIR}/docs/man/tundrad.8 DESTINATION ${CMAKE_INSTALL_MANDIR}/man8)
foreach(doc README.md LICENSE docs/OPERATIONS.md)
    if(EXISTS ${PROJECT_SOURCE_DIR}/${doc})
        install(FILES ${PROJECT_SOURCE_DIR}/${doc} DESTINATION ${CMAKE_INSTALL_DOCDIR})
    endif()
endforeach()

# --- CPack: one .deb -------------------------------------------------------------------------
set(CPACK_GENERATOR "DEB")
set(CPACK_PACKAGE_NAME "tundra")
set(CPACK_PACKAGE_VERSION "${PROJECT_VERSION}")
set(CPACK_PACKAGE_VENDOR "Tundra project")
set(CPACK_PACKAGE_CONTACT "Tundra maintainers <maintainers@tundra.invalid>")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "real-time chat and agent-messaging server")
set(CPACK_PACKAGE_DESCRIPTION
    "tundrad serves the Tundra Chat Protocol: users and agents, broadcast and direct\n\
messages, presence, offline buffers with lossless resume, heartbeats and health metrics.\n\
Includes tundra-cli, a systemd unit and an admin HTTP endpoint for Prometheus.")
set(CPACK_PACKAGING_INSTALL_PREFIX "/usr")
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_SECTION "net")
set(CPACK_DEBIAN_PACKAGE_PRIORITY "optional")
# The shared libraries the binaries link (fmt, spdlog, libuuid, readline for the CLI, toml++
# for the config file, SQLite for the store, libssl3 and libsodium23 for tokens and accounts),
# plus the C and C++ runtimes.
set(CPACK_DEBIAN_PACKAGE_DEPENDS
    "libc6, libstdc++6, libgcc-s1, libuuid1, libfmt9, libspdlog1.10, libreadline8, libtomlplusplus3, libsqlite3-0, zlib1g, libssl3, libsodium23")

# dpkg keeps an operator's edits to a conffile across upgrades and asks before replacing it.
set(TUNDRA_DEBIAN_DIR "${PROJECT_BINARY_DIR}/debian")
file(WRITE "${TUNDRA_DEBIAN_DIR}/conffiles" "/etc/tundra/tundra.conf\n")
set(CPACK_DEBIAN_PACKAGE_CONTROL_EXTRA
    "${TUNDRA_DEBIAN_DIR}/conffiles"
    "${PROJECT_SOURCE_DIR}/packaging/debian/postinst"
    "${PROJECT_SOURCE_DIR}/packaging/debian/prerm"
    "${PROJECT_SOURCE_DIR}/packaging/debian/postrm")
set(CPACK_DEBIAN_PACKAGE_CONTROL_STRICT_PERMISSION TRUE)

include(CPack)
