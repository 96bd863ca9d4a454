"""mod_sftp's SFTP wire numbers (draft-ietf-secsh-filexfer-02 to -13): packet types, status codes and their texts,
shared by the request handlers (sftp_fxp.py) and the extensions (sftp_ext.py)."""

INIT, VERSION, OPEN, CLOSE, READ_, WRITE_, LSTAT, FSTAT, SETSTAT, FSETSTAT = 1, 2, 3, 4, 5, 6, 7, 8, 9, 10
OPENDIR, READDIR, REMOVE, MKDIR, RMDIR, REALPATH, STAT, RENAME, READLINK, SYMLINK = 11, 12, 13, 14, 15, 16, 17, 18, 19, 20
LINK, BLOCK, UNBLOCK = 21, 22, 23                               # version 6 (ProFTPD's LINK, LOCK, UNLOCK)
STATUS, HANDLE, DATA, NAME, ATTRS, EXTENDED, EXTENDED_REPLY = 101, 102, 103, 104, 105, 200, 201

OK, EOF, NO_SUCH_FILE, PERMISSION_DENIED, FAILURE, BAD_MESSAGE, OP_UNSUPPORTED = 0, 1, 2, 3, 4, 5, 8
INVALID_HANDLE, FILE_ALREADY_EXISTS, NO_SPACE_ON_FILESYSTEM, QUOTA_EXCEEDED, DIR_NOT_EMPTY = 9, 11, 14, 15, 18
UNKNOWN_PRINCIPAL, LOCK_CONFLICT = 16, 17
NOT_A_DIRECTORY, INVALID_FILENAME, LINK_LOOP, INVALID_PARAMETER, FILE_IS_A_DIRECTORY = 19, 20, 21, 23, 24
STATUS_TEXT = {OK: "OK", EOF: "End of file", NO_SUCH_FILE: "No such file", PERMISSION_DENIED: "Permission denied",
               FAILURE: "Failure", BAD_MESSAGE: "Bad message", OP_UNSUPPORTED: "Unsupported operation",
               INVALID_HANDLE: "Invalid handle", FILE_ALREADY_EXISTS: "File already exists",
               NO_SPACE_ON_FILESYSTEM: "Out of disk space", QUOTA_EXCEEDED: "Quota exceeded",
               UNKNOWN_PRINCIPAL: "Unknown principal", LOCK_CONFLICT: "Lock conflict",
               DIR_NOT_EMPTY: "Directory is not empty", NOT_A_DIRECTORY: "Not a directory",
               INVALID_FILENAME: "Invalid filename", LINK_LOOP: "Link loop", INVALID_PARAMETER: "Invalid parameter",
               FILE_IS_A_DIRECTORY: "File is a directory"}
