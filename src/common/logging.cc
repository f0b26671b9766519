// SPDX-License-Identifier: Apache-2.0
#include "common/logging.h"

#include <spdlog/pattern_formatter.h>
#include <spdlog/sinks/stdout_sinks.h>

#include <memory>

namespace tundra::common {

namespace {

// Maps spdlog levels to syslog priorities for sd-daemon(3) style "<N>" prefixes.
class SyslogPriorityFlag final : public spdlog::custom_flag_formatter {
public:
    void format(const spdlog::details::log_msg& msg, const std::tm&,
                spdlog::memory_buf_t& dest) override {
        static constexpr char kPrio[] = {'7', '7', '6', '4', '3', '2', '6'};
        const auto idx = static_cast<std::size_t>(msg.level);
        const char text[3] = {'<', idx < sizeof(kPrio) ? kPrio[idx] : '6', '>'};
        dest.append(text, text + 3);
    }
    std::unique_ptr<custom_flag_formatter> clone() const override {
        return std::make_unique<SyslogPriorityFlag>();
    }
};

}  // namespace

std::optional<spdlog::level::level_enum> parseLogLevel(std::string_view name) {
    static constexpr std::pair<std::string_view, spdlog::level::level_enum> kLevels[] = {
        {"trace", spdlog::level::trace},       {"debug", spdlog::level::debug},
        {"info", spdlog::level::info},         {"warn", spdlog::level::warn},
        {"warning", spdlog::level::warn},      {"error", spdlog::level::err},
        {"critical", spdlog::level::critical}, {"off", spdlog::level::off},
    };
    for (const auto& [text, level] : kLevels) {
        if (text == name) {
            return level;
        }
    }
    return std::nullopt;
}

void setupLogging(spdlog::level::level_enum level) {
    auto sink = std::make_shared<spdlog::sinks::stderr_sink_mt>();
    auto logger = std::make_shared<spdlog::logger>("tundra", sink);
    auto formatter = std::make_unique<spdlog::pattern_formatter>();
    formatter->add_flag<SyslogPriorityFlag>('*').set_pattern("%*%Y-%m-%d %H:%M:%S.%e %l %v");
    logger->set_formatter(std::move(formatter));
    logger->set_level(level);
    logger->flush_on(spdlog::level::info);
    spdlog::set_default_logger(logger);
}

}  // namespace tundra::common
