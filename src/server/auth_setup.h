// SPDX-License-Identifier: Apache-2.0
// Identity glue: the core::Authenticator a Config asks for (auth = none | tokens | accounts,
// keys and accounts read from their files), and the `tundrad token` and `tundrad
// hash-password` commands.
#pragma once

#include <iosfwd>
#include <memory>
#include <string>
#include <vector>

#include "core/authenticator.h"
#include "server/config.h"

namespace tundra::server {

/// Builds the Authenticator of `config`: null for auth = none. False with a clear `error`
/// ("token_secret_file /x: cannot be read") if a key or the accounts file is unusable.
bool makeAuthenticator(const Config& config, std::shared_ptr<const core::Authenticator>& out,
                       std::string& error);

/// `tundrad token --user NAME [--kind user|agent] [--roles a,b] [--ttl SECONDS]
/// [--token-private-key-file FILE] [--config FILE] [other settings]`: prints a signed token
/// and a newline to `out`. `now_s` is the Unix time. Returns the exit code (2 = bad usage).
int runTokenCommand(const std::vector<std::string>& args, std::int64_t now_s, std::string& out,
                    std::string& err);

/// `tundrad hash-password --user NAME [--kind user|agent] [--roles a,b]`: reads the password
/// (the first line of `in`) and prints an accounts-file entry. Returns the exit code.
int runHashPasswordCommand(const std::vector<std::string>& args, std::istream& in, std::string& out,
                           std::string& err);

}  // namespace tundra::server
