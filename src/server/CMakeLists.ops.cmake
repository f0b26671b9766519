# SPDX-License-Identifier: Apache-2.0
# Operations pieces of the server, included from src/server/CMakeLists.txt: the settings
# table, the TOML config file, sd_notify, the admin HTTP listener and the Prometheus page. No dependency on Server.
find_package(tomlplusplus 3 REQUIRED)
# Static libraries carry their link dependencies to the final executables in other
# directories, so the imported target must be visible there too.
get_target_property(tundra_toml_global tomlplusplus::tomlplusplus IMPORTED_GLOBAL)
if(NOT tundra_toml_global)
    set_target_properties(tomlplusplus::tomlplusplus PROPERTIES IMPORTED_GLOBAL TRUE)
endif()

add_library(tundra_ops STATIC
    ${CMAKE_CURRENT_LIST_DIR}/settings.cc
    ${CMAKE_CURRENT_LIST_DIR}/config_file.cc
    ${CMAKE_CURRENT_LIST_DIR}/sd_notify.cc
    ${CMAKE_CURRENT_LIST_DIR}/admin_http.cc
    ${CMAKE_CURRENT_LIST_DIR}/prometheus.cc)
target_link_libraries(tundra_ops
    PUBLIC tundra_core tundra_net tundra_common
    PRIVATE tomlplusplus::tomlplusplus OpenSSL::Crypto)
tundra_target_defaults(tundra_ops)
