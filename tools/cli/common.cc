// SPDX-License-Identifier: Apache-2.0
// Helpers shared by the one-shot commands (commands.cc) and the interactive mode
// (interactive.cc): interrupt handling, client options, exit codes, error and result lines,
// registering, image MIME types, --save-images and reading files.
#include "cli/common.h"

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iterator>
#include <random>

namespace tundra::cli {

volatile std::sig_atomic_t g_interrupted = 0;

namespace {

extern "C" void onInterrupt(int /*signo*/) { g_interrupted = 1; }

}  // namespace

void installInterruptHandlers() {
    struct sigaction sa {};
    sa.sa_handler = onInterrupt;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = 0;  // no SA_RESTART: poll() returns EINTR so loops notice at once
    ::sigaction(SIGINT, &sa, nullptr);
    ::sigaction(SIGTERM, &sa, nullptr);
}

client::Options clientOptions(const GlobalOptions& g) {
    client::Options o;
    o.host = g.host;
    o.port = g.port;
    o.connect_timeout = g.timeout;
    o.request_timeout = g.timeout;
    o.auto_reconnect = !g.no_reconnect;
    o.tls.enabled = g.tls || g.insecure;
    o.tls.ca_file = g.ca_file;
    o.tls.insecure = g.insecure;
    o.tls.cert_file = g.cert_file;
    o.tls.key_file = g.key_file;
    return o;
}

int exitCodeFor(const client::ClientError& e) {
    switch (e.kind) {
        case client::ErrorKind::Server:
        case client::ErrorKind::InvalidArgument:
        case client::ErrorKind::Protocol:
        case client::ErrorKind::Overflow:
            return kExitFailed;
        case client::ErrorKind::Timeout:
            return kExitTimeout;
        case client::ErrorKind::Connect:
        case client::ErrorKind::Disconnected:
        case client::ErrorKind::Closed:
            return kExitUnreachable;
    }
    return kExitFailed;
}

void printError(std::string_view context, const client::ClientError& e) {
    std::string msg = sanitizeForTerminal(e.message());
    if (e.kind == client::ErrorKind::Connect || context.empty()) {
        std::fprintf(stderr, "tundra-cli: %s\n", msg.c_str());
    } else {
        std::fprintf(stderr, "tundra-cli: %.*s: %s\n", static_cast<int>(context.size()),
                     context.data(), msg.c_str());
    }
}

void printError(std::string_view message) {
    std::fprintf(stderr, "tundra-cli: %.*s\n", static_cast<int>(message.size()), message.data());
}

void printLine(std::string_view line) {
    std::fwrite(line.data(), 1, line.size(), stdout);
    std::fputc('\n', stdout);
    std::fflush(stdout);
}

std::string sessionName(const GlobalOptions& g) {
    if (!g.user.empty()) {
        return g.user;
    }
    std::random_device rd;
    return generatedName((static_cast<std::uint64_t>(rd()) << 32) ^ rd());
}

std::optional<int> registerClient(client::Client& c, const CliConfig& cfg, const std::string& name,
                                  client::Welcome* welcome) {
    client::Identity id;
    id.name = name;
    id.kind = cfg.global.agent ? ClientKind::Agent : ClientKind::User;
    id.token = cfg.global.token;
    // A generated cli-XXXXXX name is nobody's: the server forgets it after our LOGOUT.
    id.ephemeral = cfg.global.user.empty();
    auto w = c.registerAs(id);
    if (!w) {
        printError(w.error().kind == client::ErrorKind::Server ? "cannot register as " + name
                                                               : std::string(),
                   w.error());
        return exitCodeFor(w.error());
    }
    if (welcome != nullptr) {
        *welcome = *w;
    }
    return std::nullopt;
}

std::string guessImageMime(std::string_view path) {
    auto dot = path.rfind('.');
    if (dot == std::string_view::npos || path.find('/', dot) != std::string_view::npos) {
        return {};
    }
    std::string ext(path.substr(dot + 1));
    std::transform(ext.begin(), ext.end(), ext.begin(),
                   [](unsigned char ch) { return static_cast<char>(std::tolower(ch)); });
    if (ext == "png" || ext == "gif" || ext == "webp" || ext == "bmp") {
        return "image/" + ext;
    }
    if (ext == "jpg" || ext == "jpeg") {
        return "image/jpeg";
    }
    if (ext == "svg") {
        return "image/svg+xml";
    }
    return {};
}

std::optional<int> openImageSaver(const CliConfig& cfg, std::optional<ImageSaver>& saver) {
    if (cfg.save_images.empty()) {
        return std::nullopt;
    }
    if (auto why = ImageSaver::checkDirectory(cfg.save_images)) {
        printError("--save-images: " + sanitizeForTerminal(*why));
        return kExitUsage;
    }
    saver.emplace(cfg.save_images);
    return std::nullopt;
}

SavedImage saveImage(ImageSaver& saver, const client::Delivery& d) {
    auto outcome = saver.save(d);
    return SavedImage{std::move(outcome.path), std::move(outcome.error)};
}

std::string saveFailureText(const client::Delivery& d, std::string_view error) {
    return "--save-images: cannot save image " + std::to_string(d.id) + " from " +
           sanitizeForTerminal(d.from) + ": " + sanitizeForTerminal(error);
}

std::optional<std::string> readFile(const std::string& path, std::string& error) {
    std::ifstream in(path, std::ios::binary);
    if (!in) {
        error = "cannot read '" + path + "': " + std::strerror(errno);
        return std::nullopt;
    }
    std::string data((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    if (in.bad()) {
        error = "cannot read '" + path + "'";
        return std::nullopt;
    }
    return data;
}

}  // namespace tundra::cli
