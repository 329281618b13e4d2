#pragma once
/// CurveZMQ keys (docs/security.md): key files, allow-lists, and socket set-up for each role.
///
/// A key file holds a key pair as two lines, `public = <Z85>` and `secret = <Z85>` (40 characters
/// each; `#` starts a comment). A public-key file or an allow-list holds `public = <Z85>` lines or
/// bare Z85 keys, one per line.

#include <zmq.hpp>

#include <optional>
#include <set>
#include <string>

namespace deferq::curve {

struct key_pair {
    std::string public_key; ///< Z85, 40 characters
    std::string secret_key; ///< Z85, 40 characters (empty when only the public half is known)
};

/// A fresh key pair (zmq_curve_keypair). Throws when libzmq lacks CURVE.
key_pair generate();

/// Writes `base.key` (both halves, mode 0600) and `base.pub` (public half). Throws on I/O errors.
void write_key_files(const std::string& base, const key_pair& keys);

/// Reads a key file (or a public-key file, then secret_key stays empty). Throws std::runtime_error
/// naming the file and line for anything malformed.
key_pair read_key_file(const std::string& path);

/// Reads an allow-list: every public key found in the file. Throws on malformed lines.
std::set<std::string> read_allow_list(const std::string& path);

/// A server key given as a Z85 key or as the path of a key file / public-key file.
std::string server_key_from(const std::string& key_or_path);

/// A Z85 public key → the same key from 32 raw bytes (as a ZAP request carries it).
std::string z85_from_binary(const void* data, std::size_t size);

/// True when `text` is a valid 40-character Z85 key.
bool valid_z85_key(const std::string& text);

/// Makes `socket` a CURVE server with the broker's key pair.
void make_server(zmq::socket_t& socket, const key_pair& broker_keys);
/// Checks what make_client() needs before any socket sees it: both halves of `own_keys` and
/// `server_public_key` are Z85 keys. Throws config_error saying which is not (never its text).
void check_client_keys(const key_pair& own_keys, const std::string& server_public_key);
/// Makes `socket` a CURVE client of a broker with public key `server_public_key`.
void make_client(zmq::socket_t& socket, const key_pair& own_keys,
                 const std::string& server_public_key);

} // namespace deferq::curve
