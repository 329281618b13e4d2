#include "deferq/curve.hpp"

#include "deferq/config_error.hpp"

#include <sys/stat.h>

#include <fstream>
#include <stdexcept>

namespace deferq::curve {
namespace {

std::string trim(const std::string& text) {
    auto first = text.find_first_not_of(" \t\r\n");
    if (first == std::string::npos) return {};
    auto last = text.find_last_not_of(" \t\r\n");
    return text.substr(first, last - first + 1);
}

/// Parses one line: blank or `# comment` (nothing), `public = KEY`, `secret = KEY`, or a bare KEY.
/// Z85 uses '#' and '=' too, so a comment must start the line and the key is the last 40
/// characters.
std::pair<std::string, std::string> parse_line(const std::string& raw, const std::string& path,
                                               int number) {
    auto line = trim(raw);
    if (line.empty() || line.front() == '#') return {};
    std::string name = "public", value = line;
    if (line.size() > 40) {
        value = line.substr(line.size() - 40);
        auto head = trim(line.substr(0, line.size() - 40));
        if (head.empty() || head.back() != '=')
            name.clear();
        else
            name = trim(head.substr(0, head.size() - 1));
    }
    if ((name != "public" && name != "secret") || !valid_z85_key(value))
        throw std::runtime_error(
            path + ":" + std::to_string(number) +
            ": expected 'public = KEY', 'secret = KEY' or a 40-character Z85 key");
    return {name, value};
}

} // namespace

bool valid_z85_key(const std::string& text) {
    if (text.size() != 40) return false;
    unsigned char decoded[32];
    return zmq_z85_decode(decoded, text.c_str()) != nullptr;
}

key_pair generate() {
    char public_key[41], secret_key[41];
    if (zmq_curve_keypair(public_key, secret_key) != 0)
        throw std::runtime_error("this libzmq has no CURVE support (zmq_curve_keypair failed)");
    return {public_key, secret_key};
}

void write_key_files(const std::string& base, const key_pair& keys) {
    {
        auto path = base + ".key";
        std::ofstream out(path, std::ios::trunc);
        if (!out) throw std::runtime_error("cannot write " + path);
        ::chmod(path.c_str(), 0600);
        out << "# deferq CURVE key pair: keep secret\npublic = " << keys.public_key
            << "\nsecret = " << keys.secret_key << "\n";
    }
    auto path = base + ".pub";
    std::ofstream out(path, std::ios::trunc);
    if (!out) throw std::runtime_error("cannot write " + path);
    out << "# deferq CURVE public key\npublic = " << keys.public_key << "\n";
}

key_pair read_key_file(const std::string& path) {
    std::ifstream in(path);
    if (!in) throw std::runtime_error("cannot read key file " + path);
    key_pair keys;
    std::string line;
    for (int number = 1; std::getline(in, line); ++number) {
        auto [name, value] = parse_line(line, path, number);
        if (name == "public")
            keys.public_key = value;
        else if (name == "secret")
            keys.secret_key = value;
    }
    if (keys.public_key.empty()) throw std::runtime_error(path + ": no public key");
    if (!keys.secret_key.empty()) {
        char derived[41];
        if (zmq_curve_public(derived, keys.secret_key.c_str()) != 0 || keys.public_key != derived)
            throw std::runtime_error(path + ": the public key does not belong to the secret key");
    }
    return keys;
}

std::set<std::string> read_allow_list(const std::string& path) {
    std::ifstream in(path);
    if (!in) throw std::runtime_error("cannot read allow-list " + path);
    std::set<std::string> keys;
    std::string line;
    for (int number = 1; std::getline(in, line); ++number) {
        auto [name, value] = parse_line(line, path, number);
        if (name == "secret")
            throw std::runtime_error(path + ":" + std::to_string(number) +
                                     ": an allow-list holds public keys only");
        if (!value.empty()) keys.insert(value);
    }
    return keys;
}

std::string server_key_from(const std::string& key_or_path) {
    if (valid_z85_key(key_or_path)) return key_or_path;
    return read_key_file(key_or_path).public_key;
}

std::string z85_from_binary(const void* data, std::size_t size) {
    if (size != 32) return {};
    char text[41];
    if (!zmq_z85_encode(text, static_cast<const std::uint8_t*>(data), 32)) return {};
    return text;
}

void make_server(zmq::socket_t& socket, const key_pair& broker_keys) {
    socket.set(zmq::sockopt::curve_server, 1);
    socket.set(zmq::sockopt::curve_secretkey, broker_keys.secret_key);
}

void check_client_keys(const key_pair& own_keys, const std::string& server_public_key) {
    if (!valid_z85_key(own_keys.public_key))
        throw config_error("CURVE: the public key is not a 40-character Z85 key");
    if (!valid_z85_key(own_keys.secret_key))
        throw config_error("CURVE: the secret key is not a 40-character Z85 key");
    if (!valid_z85_key(server_public_key))
        throw config_error("CURVE: the broker's public key is not a 40-character Z85 key");
}

void make_client(zmq::socket_t& socket, const key_pair& own_keys,
                 const std::string& server_public_key) {
    socket.set(zmq::sockopt::curve_serverkey, server_public_key);
    socket.set(zmq::sockopt::curve_publickey, own_keys.public_key);
    socket.set(zmq::sockopt::curve_secretkey, own_keys.secret_key);
}

} // namespace deferq::curve
