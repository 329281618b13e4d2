#include "peer_dialect.hpp"

#include <stdexcept>
#include <string>

namespace deferq::broker_detail {
namespace {

[[noreturn]] void no_batches(const peer_dialect& dialect) {
    throw std::logic_error(std::string(dialect.name()) + " peers take no BATCH");
}

} // namespace

void peer_dialect::job_record(protocol::batch_writer&, const job_message&) const {
    no_batches(*this);
}
void peer_dialect::cancel_record(protocol::batch_writer&, std::uint64_t) const {
    no_batches(*this);
}
void peer_dialect::reply_record(protocol::batch_writer&, const reply_message&) const {
    no_batches(*this);
}
void peer_dialect::error_record(protocol::batch_writer&, const error_message&) const {
    no_batches(*this);
}

} // namespace deferq::broker_detail
