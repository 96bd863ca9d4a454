"""SSH version 2 for mod_sftp: the wire encoding (`wire`), the cryptography (`crypto`: libsodium and libcrypto
through ctypes, RSA by Python's pow), key files and public keys (`keys`), the transport layer of RFC 4253
(`transport`: version exchange, binary packets, key exchange, rekeying) and the connection layer's channels of
RFC 4254 (`channel`). Nothing here knows a session or FTP: mod_sftp (proftpy/modules/sftp*.py) drives it."""
