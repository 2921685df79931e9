// baton's native helpers: the few socket calls Node does not expose.
//
// - listenSocket: socket()+bind()+listen() with no accept loop, so the master holds a
//   listening socket without ever accepting on it (a net.Server in the master would); a
//   callback sets socket options between socket() and bind(), as systemd does.
// - setSockOpt / getSockOpt / streamSocket: the systemd.socket(5) options, by name.
// - sockInfo / setCloexec / dupCloexec: inspect and prepare inherited sockets.
// - sendNoWait: a log line to a stream socket on fd 2 without blocking, with no fcntl on it.
// - peerGone: whether a control client is still there to read the answer (poll's POLLHUP).
// - argMax / randomBytes: sysconf(_SC_ARG_MAX) and getrandom(2), without a getconf process
//   or node:crypto (~10 ms and ~1 MB at every master start).
// - notifySend / NotifyReceiver: AF_UNIX datagrams for sd_notify, including abstract
//   addresses ("@name") and sender credentials (SO_PASSCRED), which no npm package offers.
#define NAPI_VERSION 8
#define _GNU_SOURCE
#include <node_api.h>
#include <uv.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/random.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#define CHECK(call)                                                   \
  do {                                                                \
    if ((call) != napi_ok) {                                          \
      napi_throw_error(env, NULL, "N-API call failed: " #call);       \
      return NULL;                                                    \
    }                                                                 \
  } while (0)

static napi_value throw_errno(napi_env env, int err, const char *syscall, const char *what) {
  char msg[512];
  const char *code = NULL;
  switch (err) {
#define E(x) case x: code = #x; break;
    E(EADDRINUSE) E(EADDRNOTAVAIL) E(EACCES) E(EPERM) E(ENOENT) E(EBADF) E(ENOTSOCK)
    E(EINVAL) E(ECONNREFUSED) E(EAFNOSUPPORT) E(ENAMETOOLONG) E(EAGAIN) E(ENOTDIR)
    E(EROFS) E(EMFILE) E(ENOBUFS) E(EMSGSIZE) E(ENOMEM) E(ENOSPC) E(EPIPE) E(ECONNRESET)
    E(ENOTCONN) E(EIO) E(EINTR) E(EOPNOTSUPP) E(ENODEV) E(ENOPROTOOPT) E(EEXIST) E(ELOOP)
#undef E
    default: code = "EUNKNOWN";
  }
  snprintf(msg, sizeof msg, "%s %s%s%s: %s", syscall, what ? what : "", what ? " " : "", code,
           strerror(err));
  napi_value m, c, e, s, n;
  napi_create_string_utf8(env, msg, NAPI_AUTO_LENGTH, &m);
  napi_create_string_utf8(env, code, NAPI_AUTO_LENGTH, &c);
  napi_create_error(env, c, m, &e);
  napi_create_string_utf8(env, syscall, NAPI_AUTO_LENGTH, &s);
  napi_set_named_property(env, e, "syscall", s);
  napi_create_int32(env, -err, &n);
  napi_set_named_property(env, e, "errno", n);
  napi_throw(env, e);
  return NULL;
}

static int get_string(napi_env env, napi_value v, char *buf, size_t len) {
  size_t got;
  if (napi_get_value_string_utf8(env, v, buf, len, &got) != napi_ok) return -1;
  return (int)got;
}

// Fills a sockaddr_un; "@name" is an abstract address. Returns the address length or -1.
static socklen_t unix_addr(const char *path, size_t plen, struct sockaddr_un *sa) {
  memset(sa, 0, sizeof *sa);
  sa->sun_family = AF_UNIX;
  if (plen == 0 || plen >= sizeof sa->sun_path) return 0;
  memcpy(sa->sun_path, path, plen);
  if (path[0] == '@') sa->sun_path[0] = 0;
  return (socklen_t)(offsetof(struct sockaddr_un, sun_path) + plen + (path[0] == '@' ? 0 : 1));
}

typedef char sun_path_buf[sizeof(((struct sockaddr_un *)0)->sun_path) + 1];

// Reads a socket path argument ("@name" = abstract) into `sa`; returns the address length,
// or 0 after throwing.
static socklen_t unix_arg(napi_env env, napi_value v, struct sockaddr_un *sa, sun_path_buf path) {
  int plen = get_string(env, v, path, sizeof(sun_path_buf));
  if (plen < 0) {
    napi_throw_type_error(env, NULL, "socket path must be a string");
    return 0;
  }
  socklen_t sl = unix_addr(path, (size_t)plen, sa);
  if (sl == 0) throw_errno(env, ENAMETOOLONG, "socket", path);
  return sl;
}

// Binds a unix socket so that bind() itself creates the file with exactly `mode`, as systemd's
// SocketMode= does by setting the umask around bind(): no chmod afterwards, so no path that
// someone could swap for a symlink in between is ever followed. Linux gives the file the
// socket inode's mode (0777) masked by the umask of the calling task. The umask is shared by
// every thread of a process (libuv's threadpool may create files meanwhile, and a mode wider
// than the usual umask would widen those), so bind() runs in a child that shares our memory
// but not our umask (clone without CLONE_FS, as posix_spawn does; unshare(CLONE_FS) in a
// thread would do too, but container seccomp profiles often refuse unshare). The child gets
// a copy of the fd table, so bind() on its copy binds our socket; we wait for it to exit.
typedef struct {
  int fd;
  mode_t mode;
  struct sockaddr_un sa;
  socklen_t sl;
  int err;
} unix_bind_job;

static int unix_bind_child(void *p) {
  unix_bind_job *j = p;
  umask(~j->mode & 0777);
  j->err = bind(j->fd, (struct sockaddr *)&j->sa, j->sl) < 0 ? errno : 0;
  return 0;
}

static int bind_unix_with_mode(int fd, const struct sockaddr_un *sa, socklen_t sl, mode_t mode) {
  unix_bind_job job = {fd, mode & 0777, *sa, sl, 0};
  const size_t stack_size = 64 * 1024;
  char *stack = malloc(stack_size);
  if (!stack) return ENOMEM;
  // Signals stay blocked in the child (it inherits the mask and never unblocks it), so no
  // handler of ours runs there; the parent gets them once the mask is restored.
  sigset_t all, old;
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, &old);
  pid_t pid = clone(unix_bind_child, stack + stack_size, CLONE_VM | CLONE_VFORK, &job);
  int err = pid < 0 ? errno : 0;
  if (pid > 0) {
    while (waitpid(pid, NULL, __WALL) < 0 && errno == EINTR) {}
  }
  pthread_sigmask(SIG_SETMASK, &old, NULL);
  free(stack);
  return err ? err : job.err;
}

// Gives the socket file just bound at `path` to uid:gid (-1: unchanged), as SocketUser=/
// SocketGroup=, without following the path twice: the file is opened O_PATH|O_NOFOLLOW,
// checked to be a socket baton's user made with one link (not a symlink, nor a hard link
// someone swapped in), and changed through that fd, so what was checked is what changes.
static int chown_socket_file(const char *path, uid_t uid, gid_t gid) {
  int pfd = open(path, O_PATH | O_NOFOLLOW | O_CLOEXEC);
  if (pfd < 0) return errno;
  struct stat st;
  int err = 0;
  if (fstat(pfd, &st) < 0) err = errno;
  else if (!S_ISSOCK(st.st_mode) || st.st_uid != geteuid() || st.st_nlink != 1) err = EEXIST;
  else if (fchownat(pfd, "", uid, gid, AT_EMPTY_PATH) < 0) err = errno;
  close(pfd);
  return err;
}

// Removes the socket file at `path` after a step past bind() failed, only while it is the file
// seen right after bind() (`bound`: a socket of ours; same device and inode): anything swapped
// in meanwhile is not ours and stays (a stale socket of ours left behind is removed by the next
// bind's stale-socket check). A swap between this lstat() and unlink() needs write access to
// the folder, which could remove the file anyway.
static void unlink_if_bound(const char *path, const struct stat *bound) {
  struct stat st;
  if (!S_ISSOCK(bound->st_mode) || bound->st_uid != geteuid()) return;
  if (lstat(path, &st) == 0 && S_ISSOCK(st.st_mode) && st.st_dev == bound->st_dev && st.st_ino == bound->st_ino) unlink(path);
}

// Calls prepare(fd) if it is a function; false when it threw (the exception is pending).
static bool call_prepare(napi_env env, napi_value prepare, int fd) {
  napi_valuetype t;
  if (napi_typeof(env, prepare, &t) != napi_ok || t != napi_function) return true;
  napi_value fdv, undef, result;
  napi_create_int32(env, fd, &fdv);
  napi_get_undefined(env, &undef);
  return napi_call_function(env, undef, prepare, 1, &fdv, &result) == napi_ok;
}

// listenSocket(family: 4|6|0, address, port, backlog, mode[, prepare(fd)[, [uid, gid]]])
// family 0 is a unix stream socket at `address`, created with permissions `mode` and, given
// [uid, gid], owned by them before listen(). prepare(fd) runs between socket() and bind()
// (socket options); if it throws, the socket is closed and the exception goes on.
static napi_value ListenSocket(napi_env env, napi_callback_info info) {
  size_t argc = 7;
  napi_value argv[7];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 5) { napi_throw_type_error(env, NULL, "listenSocket: 5 arguments at least"); return NULL; }
  int32_t family, port, backlog, mode, uid = -1, gid = -1;
  char addr[256];
  CHECK(napi_get_value_int32(env, argv[0], &family));
  int alen = get_string(env, argv[1], addr, sizeof addr);
  CHECK(napi_get_value_int32(env, argv[2], &port));
  CHECK(napi_get_value_int32(env, argv[3], &backlog));
  CHECK(napi_get_value_int32(env, argv[4], &mode));
  if (alen < 0) { napi_throw_type_error(env, NULL, "address must be a string"); return NULL; }
  bool owned = false;
  if (argc >= 7) {
    bool is_array = false;
    CHECK(napi_is_array(env, argv[6], &is_array));
    if (is_array) {
      napi_value v;
      CHECK(napi_get_element(env, argv[6], 0, &v));
      CHECK(napi_get_value_int32(env, v, &uid));
      CHECK(napi_get_element(env, argv[6], 1, &v));
      CHECK(napi_get_value_int32(env, v, &gid));
      owned = uid != -1 || gid != -1;
    }
  }

  int domain = family == 4 ? AF_INET : family == 6 ? AF_INET6 : AF_UNIX;
  int fd = socket(domain, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return throw_errno(env, errno, "socket", addr);
  int one = 1, rc;
  struct stat bound = {0};
  if (domain != AF_UNIX) setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (argc >= 6 && !call_prepare(env, argv[5], fd)) { close(fd); return NULL; }
  if (domain == AF_UNIX) {
    struct sockaddr_un sa;
    socklen_t sl = unix_addr(addr, (size_t)alen, &sa);
    if (sl == 0) { close(fd); return throw_errno(env, ENAMETOOLONG, "bind", addr); }
    int e = bind_unix_with_mode(fd, &sa, sl, (mode_t)mode);
    if (e) { close(fd); return throw_errno(env, e, "bind", addr); }
    if (lstat(addr, &bound) < 0) memset(&bound, 0, sizeof bound);
    e = owned ? chown_socket_file(addr, (uid_t)uid, (gid_t)gid) : 0;
    if (e) {
      close(fd);
      if (e == EEXIST) {
        // not the socket just bound: someone else's file, left alone
        napi_throw_error(env, "EEXIST", "chown: the file is no longer the socket just bound (replaced meanwhile)");
        return NULL;
      }
      unlink_if_bound(addr, &bound);
      return throw_errno(env, e, "chown", addr);
    }
    rc = 0;
  } else if (domain == AF_INET) {
    struct sockaddr_in sa = {0};
    sa.sin_family = AF_INET;
    sa.sin_port = htons((uint16_t)port);
    if (inet_pton(AF_INET, addr, &sa.sin_addr) != 1) { close(fd); return throw_errno(env, EINVAL, "inet_pton", addr); }
    rc = bind(fd, (struct sockaddr *)&sa, sizeof sa);
  } else {
    struct sockaddr_in6 sa = {0};
    sa.sin6_family = AF_INET6;
    sa.sin6_port = htons((uint16_t)port);
    if (inet_pton(AF_INET6, addr, &sa.sin6_addr) != 1) { close(fd); return throw_errno(env, EINVAL, "inet_pton", addr); }
    rc = bind(fd, (struct sockaddr *)&sa, sizeof sa);
  }
  if (rc < 0) { int e = errno; close(fd); return throw_errno(env, e, "bind", addr); }
  if (listen(fd, backlog) < 0) {
    int e = errno;
    close(fd);
    if (domain == AF_UNIX) unlink_if_bound(addr, &bound);
    return throw_errno(env, e, "listen", addr);
  }
  napi_value out;
  CHECK(napi_create_int32(env, fd, &out));
  return out;
}

// The socket options of systemd.socket(5) that apply to stream sockets, by name: the
// numbers stay in the C headers. 's' options take and give a string (an interface or
// congestion algorithm name), the others an int.
typedef struct {
  const char *name;
  int level, opt;
  char kind;
} sockopt_def;

#define OPT(level, name, kind) {#name, level, name, kind}
static const sockopt_def SOCKOPTS[] = {
  OPT(SOL_SOCKET, SO_KEEPALIVE, 'i'), OPT(SOL_SOCKET, SO_RCVBUF, 'i'), OPT(SOL_SOCKET, SO_RCVBUFFORCE, 'i'),
  OPT(SOL_SOCKET, SO_SNDBUF, 'i'), OPT(SOL_SOCKET, SO_SNDBUFFORCE, 'i'), OPT(SOL_SOCKET, SO_MARK, 'i'),
  OPT(SOL_SOCKET, SO_PRIORITY, 'i'), OPT(SOL_SOCKET, SO_BINDTODEVICE, 's'),
  OPT(IPPROTO_TCP, TCP_NODELAY, 'i'), OPT(IPPROTO_TCP, TCP_KEEPIDLE, 'i'), OPT(IPPROTO_TCP, TCP_KEEPINTVL, 'i'),
  OPT(IPPROTO_TCP, TCP_KEEPCNT, 'i'), OPT(IPPROTO_TCP, TCP_DEFER_ACCEPT, 'i'), OPT(IPPROTO_TCP, TCP_CONGESTION, 's'),
  OPT(IPPROTO_IP, IP_TOS, 'i'), OPT(IPPROTO_IP, IP_FREEBIND, 'i'), OPT(IPPROTO_IP, IP_TRANSPARENT, 'i'),
  OPT(IPPROTO_IPV6, IPV6_V6ONLY, 'i'), OPT(IPPROTO_IPV6, IPV6_FREEBIND, 'i'), OPT(IPPROTO_IPV6, IPV6_TRANSPARENT, 'i'),
};
#undef OPT

// Reads (fd, name) arguments; NULL after throwing.
static const sockopt_def *sockopt_args(napi_env env, napi_value *argv, int32_t *fd) {
  char name[32];
  if (napi_get_value_int32(env, argv[0], fd) != napi_ok || get_string(env, argv[1], name, sizeof name) < 0) {
    napi_throw_type_error(env, NULL, "expected (fd: number, name: string)");
    return NULL;
  }
  for (size_t i = 0; i < sizeof SOCKOPTS / sizeof SOCKOPTS[0]; i++) {
    if (strcmp(SOCKOPTS[i].name, name) == 0) return &SOCKOPTS[i];
  }
  napi_throw_type_error(env, NULL, "unknown socket option name");
  return NULL;
}

// setSockOpt(fd, name, value: number | string)
static napi_value SetSockOpt(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  int32_t fd;
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  const sockopt_def *d = sockopt_args(env, argv, &fd);
  if (!d) return NULL;
  int rc;
  if (d->kind == 's') {
    char v[64];
    int n = get_string(env, argv[2], v, sizeof v);
    if (n < 0) { napi_throw_type_error(env, NULL, "value must be a string"); return NULL; }
    rc = setsockopt(fd, d->level, d->opt, v, (socklen_t)n);
  } else {
    int64_t v;
    if (napi_get_value_int64(env, argv[2], &v) != napi_ok) { napi_throw_type_error(env, NULL, "value must be a number"); return NULL; }
    int iv = (int)(uint32_t)v;  // SO_MARK is a u32
    rc = setsockopt(fd, d->level, d->opt, &iv, sizeof iv);
  }
  if (rc < 0) return throw_errno(env, errno, "setsockopt", d->name);
  return NULL;
}

// getSockOpt(fd, name) -> number | string
static napi_value GetSockOpt(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2], out;
  int32_t fd;
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  const sockopt_def *d = sockopt_args(env, argv, &fd);
  if (!d) return NULL;
  if (d->kind == 's') {
    char v[64] = {0};
    socklen_t l = sizeof v - 1;
    if (getsockopt(fd, d->level, d->opt, v, &l) < 0) return throw_errno(env, errno, "getsockopt", d->name);
    CHECK(napi_create_string_utf8(env, v, strnlen(v, l), &out));
  } else {
    int v = 0;
    socklen_t l = sizeof v;
    if (getsockopt(fd, d->level, d->opt, &v, &l) < 0) return throw_errno(env, errno, "getsockopt", d->name);
    CHECK(d->opt == SO_MARK && d->level == SOL_SOCKET ? napi_create_uint32(env, (uint32_t)v, &out) : napi_create_int32(env, v, &out));
  }
  return out;
}

// streamSocket(family: 4|6|0) -> fd of a new, unbound stream socket (close-on-exec): what a
// socket's options are before anyone sets them, and a place to try options out.
static napi_value StreamSocket(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1], out;
  int32_t family;
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  CHECK(napi_get_value_int32(env, argv[0], &family));
  int fd = socket(family == 4 ? AF_INET : family == 6 ? AF_INET6 : AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return throw_errno(env, errno, "socket", NULL);
  CHECK(napi_create_int32(env, fd, &out));
  return out;
}

static void set_str(napi_env env, napi_value obj, const char *key, const char *val) {
  napi_value v;
  napi_create_string_utf8(env, val, NAPI_AUTO_LENGTH, &v);
  napi_set_named_property(env, obj, key, v);
}
static void set_int(napi_env env, napi_value obj, const char *key, int64_t val) {
  napi_value v;
  napi_create_int64(env, val, &v);
  napi_set_named_property(env, obj, key, v);
}

// The argument of a call that takes one fd alone; false (a TypeError pending) when it is not a number.
static bool fd_arg(napi_env env, napi_callback_info info, int32_t *fd) {
  size_t argc = 1;
  napi_value argv[1];
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || napi_get_value_int32(env, argv[0], fd) != napi_ok) {
    napi_throw_type_error(env, NULL, "an fd (a number) was expected");
    return false;
  }
  return true;
}

// sockInfo(fd) -> { type: 'stream'|'dgram'|'seqpacket'|'other', family: 'inet'|'inet6'|'unix'|'other',
//                   listening: boolean, connected: boolean, address, port, path, cloexec }
// type, family and listening are the kernel's SO_TYPE, SO_DOMAIN and SO_ACCEPTCONN.
static napi_value SockInfo(napi_env env, napi_callback_info info) {
  int32_t fd;
  if (!fd_arg(env, info, &fd)) return NULL;
  int type = 0, acc = 0, domain = AF_UNSPEC;
  socklen_t l = sizeof type;
  if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &l) < 0) return throw_errno(env, errno, "getsockopt", "SO_TYPE");
  l = sizeof acc;
  if (getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &acc, &l) < 0) acc = 0;
  l = sizeof domain;
  if (getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &domain, &l) < 0) return throw_errno(env, errno, "getsockopt", "SO_DOMAIN");
  struct sockaddr_storage ss;
  socklen_t sl = sizeof ss;
  memset(&ss, 0, sizeof ss);
  if (getsockname(fd, (struct sockaddr *)&ss, &sl) < 0) return throw_errno(env, errno, "getsockname", NULL);
  napi_value out, b;
  CHECK(napi_create_object(env, &out));
  set_str(env, out, "type", type == SOCK_STREAM ? "stream" : type == SOCK_DGRAM ? "dgram"
                            : type == SOCK_SEQPACKET ? "seqpacket" : "other");
  napi_get_boolean(env, acc != 0, &b);
  napi_set_named_property(env, out, "listening", b);
  struct sockaddr_storage peer;
  socklen_t pl = sizeof peer;
  napi_get_boolean(env, getpeername(fd, (struct sockaddr *)&peer, &pl) == 0, &b);
  napi_set_named_property(env, out, "connected", b);
  int flags = fcntl(fd, F_GETFD);
  napi_get_boolean(env, flags >= 0 && (flags & FD_CLOEXEC), &b);
  napi_set_named_property(env, out, "cloexec", b);
  char buf[INET6_ADDRSTRLEN + 1];
  if (ss.ss_family != domain) {
    set_str(env, out, "family", "other");
  } else if (ss.ss_family == AF_INET) {
    struct sockaddr_in *in = (struct sockaddr_in *)&ss;
    set_str(env, out, "family", "inet");
    set_str(env, out, "address", inet_ntop(AF_INET, &in->sin_addr, buf, sizeof buf));
    set_int(env, out, "port", ntohs(in->sin_port));
  } else if (ss.ss_family == AF_INET6) {
    struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&ss;
    set_str(env, out, "family", "inet6");
    set_str(env, out, "address", inet_ntop(AF_INET6, &in6->sin6_addr, buf, sizeof buf));
    set_int(env, out, "port", ntohs(in6->sin6_port));
  } else if (ss.ss_family == AF_UNIX) {
    struct sockaddr_un *un = (struct sockaddr_un *)&ss;
    set_str(env, out, "family", "unix");
    size_t n = sl > offsetof(struct sockaddr_un, sun_path) ? sl - offsetof(struct sockaddr_un, sun_path) : 0;
    char p[sizeof un->sun_path + 1];
    if (n > 0 && un->sun_path[0] == 0) {  // abstract
      p[0] = '@';
      memcpy(p + 1, un->sun_path + 1, n - 1);
      p[n] = 0;
    } else {
      memcpy(p, un->sun_path, n);
      p[n] = 0;
    }
    set_str(env, out, "path", p);
  } else {
    set_str(env, out, "family", "other");
  }
  return out;
}

static napi_value SetCloexec(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  int32_t fd;
  bool on;
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  CHECK(napi_get_value_int32(env, argv[0], &fd));
  CHECK(napi_get_value_bool(env, argv[1], &on));
  int flags = fcntl(fd, F_GETFD);
  if (flags < 0) return throw_errno(env, errno, "fcntl", NULL);
  if (fcntl(fd, F_SETFD, on ? (flags | FD_CLOEXEC) : (flags & ~FD_CLOEXEC)) < 0)
    return throw_errno(env, errno, "fcntl", NULL);
  return NULL;
}

// dupCloexec(fd): a second fd for the same open socket, close-on-exec (F_DUPFD_CLOEXEC): two
// servers of one process can then listen on one inherited socket (each fd is registered with
// epoll on its own).
static napi_value DupCloexec(napi_env env, napi_callback_info info) {
  int32_t fd;
  if (!fd_arg(env, info, &fd)) return NULL;
  int d = fcntl(fd, F_DUPFD_CLOEXEC, 3);
  if (d < 0) return throw_errno(env, errno, "fcntl", NULL);
  napi_value out;
  CHECK(napi_create_int32(env, d, &out));
  return out;
}

// notifySend(socketPath, data[, fds]): one datagram to an sd_notify socket (path or
// "@abstract"), with `fds` attached as SCM_RIGHTS (FDSTORE=1: systemd keeps copies of them).
// Never waits: a unix datagram sender blocks while the receiver's queue holds
// net.unix.max_dgram_qlen messages (10 by default), so a receiver that stalls (or a stranger
// who fills its queue) would stall the sender's event loop; a full queue throws EAGAIN, and
// the caller decides what to keep (systemd/notifier.ts, serve/lifecycle.ts).
static napi_value NotifySend(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  sun_path_buf path;
  struct sockaddr_un sa;
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  socklen_t sl = unix_arg(env, argv[0], &sa, path);
  if (sl == 0) return NULL;
  void *data;
  size_t dlen;
  CHECK(napi_get_buffer_info(env, argv[1], &data, &dlen));
  // SCM_MAX_FD is 253; systemd's FileDescriptorStoreMax= is per service anyway
  int fds[253];
  uint32_t nfds = 0;
  if (argc >= 3) {
    napi_valuetype t;
    CHECK(napi_typeof(env, argv[2], &t));
    if (t != napi_undefined) {
      bool is_array = false;
      CHECK(napi_is_array(env, argv[2], &is_array));
      if (!is_array) { napi_throw_type_error(env, NULL, "fds must be an array of numbers"); return NULL; }
      CHECK(napi_get_array_length(env, argv[2], &nfds));
      if (nfds > 253) { napi_throw_range_error(env, NULL, "at most 253 fds in one message"); return NULL; }
      for (uint32_t i = 0; i < nfds; i++) {
        napi_value v;
        CHECK(napi_get_element(env, argv[2], i, &v));
        CHECK(napi_get_value_int32(env, v, &fds[i]));
      }
    }
  }
  int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return throw_errno(env, errno, "socket", path);
  struct iovec iov = {.iov_base = data, .iov_len = dlen};
  struct msghdr mh = {.msg_name = &sa, .msg_namelen = sl, .msg_iov = &iov, .msg_iovlen = 1};
  union {
    struct cmsghdr align;
    char buf[CMSG_SPACE(sizeof(int) * 253)];
  } control;
  if (nfds > 0) {
    memset(&control, 0, sizeof control);
    mh.msg_control = control.buf;
    mh.msg_controllen = CMSG_SPACE(sizeof(int) * nfds);
    struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int) * nfds);
    memcpy(CMSG_DATA(c), fds, sizeof(int) * nfds);
  }
  ssize_t n;
  do n = sendmsg(fd, &mh, MSG_NOSIGNAL | MSG_DONTWAIT);
  while (n < 0 && errno == EINTR);
  int e = errno;
  close(fd);
  if (n < 0) return throw_errno(env, e, "sendmsg", path);
  return NULL;
}

// ---- NotifyReceiver: a bound datagram socket watched by libuv, reporting sender pids ----

// Anyone can send to the notify socket (an abstract name, shown in /proc/net/unix), and a
// datagram may carry file descriptors. The last close() of a received fd can block for as
// long as its sender likes: a TCP socket with SO_LINGER and unsent data waits for its linger
// time, a file on a FUSE mount the sender serves waits for its flush. So received fds are
// never closed on the event loop: a closer thread closes them (sockets first get SO_LINGER
// off, so a linger cannot hold even that thread). The kernel must install every fd of a
// message (fds that do not fit the control buffer are released by recvmsg() itself, in the
// caller's thread), so the buffer takes SCM_MAX_FD of them and a message is read only while
// the closer's queue has room for that many; otherwise reading pauses (the kernel's queue
// holds the rest) and resumes once the closer has caught up. SO_PASSRIGHTS=0 (Linux 6.16)
// would refuse fds at the sender, but BARRIER=1 needs them: systemd-notify --ready then fails
// ("Failed to invoke barrier: Operation not permitted").
#define SCM_MAX_FD_ 253
#define CLOSER_CAP (4 * SCM_MAX_FD_)

typedef struct {
  pthread_mutex_t mu;
  pthread_cond_t cv;
  int fds[CLOSER_CAP];
  int head, count;  // queued, not yet taken by the thread
  int closing;      // taken, being closed: still counted against the room
  int started;
  int orphaned;  // its receiver is gone: the thread frees this once the queue is empty
  uv_async_t *wake;  // the receiver's, to resume reading; NULL once it is closed
  int want_wake;     // the receiver paused: wake it once there is room for a message's fds
} closer_t;

static void *closer_main(void *p) {
  closer_t *q = p;
  sigset_t all;
  sigfillset(&all);
  pthread_sigmask(SIG_BLOCK, &all, NULL);
  pthread_mutex_lock(&q->mu);
  for (;;) {
    while (q->count == 0 && !q->orphaned) pthread_cond_wait(&q->cv, &q->mu);
    if (q->count == 0) break;
    int fd = q->fds[q->head];
    q->head = (q->head + 1) % CLOSER_CAP;
    q->count--;
    q->closing = 1;
    pthread_mutex_unlock(&q->mu);
    close(fd);
    pthread_mutex_lock(&q->mu);
    q->closing = 0;
    if (q->want_wake && q->wake && CLOSER_CAP - q->count >= SCM_MAX_FD_) {
      q->want_wake = 0;
      uv_async_send(q->wake);
    }
  }
  pthread_mutex_unlock(&q->mu);
  pthread_mutex_destroy(&q->mu);
  pthread_cond_destroy(&q->cv);
  free(q);
  return NULL;
}

// Room for a message's fds; if there is none, asks to be woken (closer_t.wake) once there is.
static int closer_has_room(closer_t *q) {
  pthread_mutex_lock(&q->mu);
  int room = CLOSER_CAP - q->count - q->closing >= SCM_MAX_FD_;
  if (!room) q->want_wake = 1;
  pthread_mutex_unlock(&q->mu);
  return room;
}

// Queues fds for the closer thread (started on first use); the caller made sure of the room.
// If the thread cannot be started, they are closed here: the fallback, not the rule.
static void closer_push(closer_t *q, const int *fds, int n) {
  struct linger off = {0, 0};
  for (int k = 0; k < n; k++) setsockopt(fds[k], SOL_SOCKET, SO_LINGER, &off, sizeof off);
  pthread_mutex_lock(&q->mu);
  if (!q->started) {
    pthread_t t;
    pthread_attr_t a;
    pthread_attr_init(&a);
    pthread_attr_setdetachstate(&a, PTHREAD_CREATE_DETACHED);
    pthread_attr_setstacksize(&a, 64 * 1024);
    q->started = pthread_create(&t, &a, closer_main, q) == 0;
    pthread_attr_destroy(&a);
  }
  if (!q->started) {
    pthread_mutex_unlock(&q->mu);
    for (int k = 0; k < n; k++) close(fds[k]);
    return;
  }
  for (int k = 0; k < n; k++) q->fds[(q->head + q->count++) % CLOSER_CAP] = fds[k];
  pthread_cond_signal(&q->cv);
  pthread_mutex_unlock(&q->mu);
}

static void closer_release(closer_t *q) {
  pthread_mutex_lock(&q->mu);
  int started = q->started;
  q->orphaned = 1;
  q->wake = NULL;
  pthread_cond_signal(&q->cv);
  pthread_mutex_unlock(&q->mu);
  if (!started) {
    pthread_mutex_destroy(&q->mu);
    pthread_cond_destroy(&q->cv);
    free(q);
  }
}

static closer_t *closer_new(void) {
  closer_t *q = calloc(1, sizeof *q);
  if (!q) return NULL;
  pthread_mutex_init(&q->mu, NULL);
  pthread_cond_init(&q->cv, NULL);
  return q;
}

// Lifetime: the JS object owns the struct (napi_wrap). It is freed when both the object has
// been collected and libuv has finished closing its handles, whichever comes last; while
// open, a strong reference keeps the object (and so the struct) alive.
typedef struct {
  napi_env env;
  napi_ref callback;
  napi_ref self;
  uv_poll_t poll;
  uv_async_t resume;  // sent by the closer thread once it has room again
  closer_t *closer;
  int fd;
  int closed;
  int handles_open;
  int finalized;
  int unrefd;
  uint64_t pauses;
} receiver_t;

static void on_handle_closed(uv_handle_t *h) {
  receiver_t *r = h->data;
  if (--r->handles_open == 0 && r->finalized) free(r);
}

static void on_finalize(napi_env env, void *data, void *hint) {
  receiver_t *r = data;
  (void)env; (void)hint;
  r->finalized = 1;
  if (r->handles_open == 0) free(r);
}

static void receiver_close(receiver_t *r) {
  if (r->closed) return;
  r->closed = 1;
  uv_poll_stop(&r->poll);
  close(r->fd);
  closer_release(r->closer);  // the closer thread no longer touches r->resume after this
  r->closer = NULL;
  if (r->callback) napi_delete_reference(r->env, r->callback);
  r->callback = NULL;
  if (r->self) napi_delete_reference(r->env, r->self);
  r->self = NULL;
  uv_close((uv_handle_t *)&r->poll, on_handle_closed);
  uv_close((uv_handle_t *)&r->resume, on_handle_closed);
}

static void on_readable(uv_poll_t *h, int status, int events);

static void on_resume(uv_async_t *a) {
  receiver_t *r = a->data;
  if (r->closed) return;
  uv_unref((uv_handle_t *)&r->resume);
  uv_poll_start(&r->poll, UV_READABLE, on_readable);
}

static void on_readable(uv_poll_t *h, int status, int events) {
  receiver_t *r = h->data;
  (void)events;
  if (status < 0 || r->closed) return;
  char buf[4096];
  union {
    struct cmsghdr align;
    char space[CMSG_SPACE(sizeof(struct ucred)) + CMSG_SPACE(sizeof(int) * SCM_MAX_FD_)];
  } ctl;
  for (int i = 0; i < 64 && !r->closed; i++) {  // bounded, so a flood cannot starve the loop
    if (!closer_has_room(r->closer)) {
      // the closer is behind (a close that blocks): wait for it rather than hold more fds
      uv_poll_stop(&r->poll);
      r->pauses++;
      if (!r->unrefd) uv_ref((uv_handle_t *)&r->resume);  // in the poll handle's place
      return;
    }
    struct iovec iov = {buf, sizeof buf};
    struct msghdr msg = {0};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = ctl.space;
    msg.msg_controllen = sizeof ctl.space;
    ssize_t n = recvmsg(r->fd, &msg, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
    if (n < 0) break;
    // Longer than the buffer: the kernel cut it. Like systemd, act on none of it (only its
    // sender is reported, so the message can be attributed and counted).
    int truncated = (msg.msg_flags & MSG_TRUNC) != 0;
    if (truncated) n = 0;
    int64_t pid = -1, uid = -1, gid = -1, nfds = 0;
    for (struct cmsghdr *c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c)) {
      if (c->cmsg_level != SOL_SOCKET) continue;
      if (c->cmsg_type == SCM_CREDENTIALS) {
        struct ucred cr;
        memcpy(&cr, CMSG_DATA(c), sizeof cr);
        pid = cr.pid; uid = cr.uid; gid = cr.gid;
      } else if (c->cmsg_type == SCM_RIGHTS) {
        // Nobody hands fds to baton's notify socket; closing them (soon, on the closer
        // thread) also releases a sender waiting on BARRIER=1 (systemd-notify), as
        // sd_notify_barrier expects.
        int fds[SCM_MAX_FD_];
        int cnt = (int)((c->cmsg_len - CMSG_LEN(0)) / sizeof(int));
        if (cnt > SCM_MAX_FD_) cnt = SCM_MAX_FD_;
        memcpy(fds, CMSG_DATA(c), sizeof(int) * (size_t)cnt);
        closer_push(r->closer, fds, cnt);
        nfds += cnt;
      }
    }
    napi_env env = r->env;
    napi_handle_scope scope;
    napi_open_handle_scope(env, &scope);
    napi_value cb, self, msgobj, data;
    napi_get_reference_value(env, r->callback, &cb);
    napi_get_reference_value(env, r->self, &self);
    napi_create_object(env, &msgobj);
    napi_create_buffer_copy(env, (size_t)n, buf, NULL, &data);
    napi_set_named_property(env, msgobj, "data", data);
    set_int(env, msgobj, "pid", pid);
    set_int(env, msgobj, "uid", uid);
    set_int(env, msgobj, "gid", gid);
    set_int(env, msgobj, "fds", nfds);
    napi_value tr;
    napi_get_boolean(env, truncated, &tr);
    napi_set_named_property(env, msgobj, "truncated", tr);
    napi_async_context ctx = NULL;
    napi_value resource, resname, result;
    napi_create_object(env, &resource);
    napi_create_string_utf8(env, "baton.notify", NAPI_AUTO_LENGTH, &resname);
    napi_async_init(env, resource, resname, &ctx);
    napi_make_callback(env, ctx, self, cb, 1, &msgobj, &result);
    napi_async_destroy(env, ctx);
    napi_close_handle_scope(env, scope);
  }
}

static receiver_t *unwrap_receiver(napi_env env, napi_callback_info info) {
  napi_value self;
  void *p = NULL;
  if (napi_get_cb_info(env, info, NULL, NULL, &self, NULL) != napi_ok) return NULL;
  if (napi_unwrap(env, self, &p) != napi_ok) {
    napi_throw_type_error(env, NULL, "not a notify receiver");
    return NULL;
  }
  return p;
}

static napi_value ReceiverClose(napi_env env, napi_callback_info info) {
  receiver_t *r = unwrap_receiver(env, info);
  if (r) receiver_close(r);
  return NULL;
}

static napi_value ReceiverUnref(napi_env env, napi_callback_info info) {
  receiver_t *r = unwrap_receiver(env, info);
  if (r && !r->closed) {
    r->unrefd = 1;
    uv_unref((uv_handle_t *)&r->poll);
  }
  return NULL;
}

// pauses(): how many times reading paused for the closer thread (for status and tests).
static napi_value ReceiverPauses(napi_env env, napi_callback_info info) {
  receiver_t *r = unwrap_receiver(env, info);
  napi_value out;
  napi_create_double(env, r ? (double)r->pauses : 0, &out);
  return out;
}

// notifyBind(path, callback(msg)) -> { fd, close(), unref() }
static napi_value NotifyBind(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  sun_path_buf path;
  struct sockaddr_un sa;
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  socklen_t sl = unix_arg(env, argv[0], &sa, path);
  if (sl == 0) return NULL;
  int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0) return throw_errno(env, errno, "socket", path);
  int one = 1;
  setsockopt(fd, SOL_SOCKET, SO_PASSCRED, &one, sizeof one);
  int rcv = 1 << 20;
  setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcv, sizeof rcv);
  if (bind(fd, (struct sockaddr *)&sa, sl) < 0) { int e = errno; close(fd); return throw_errno(env, e, "bind", path); }

  uv_loop_t *loop;
  CHECK(napi_get_uv_event_loop(env, &loop));
  receiver_t *r = calloc(1, sizeof *r);
  closer_t *q = r ? closer_new() : NULL;
  if (!q) { free(r); close(fd); return throw_errno(env, ENOMEM, "notifyBind", path); }
  r->env = env;
  r->fd = fd;
  r->closer = q;
  if (uv_poll_init(loop, &r->poll, fd) != 0) { close(fd); closer_release(q); free(r); napi_throw_error(env, NULL, "uv_poll_init failed"); return NULL; }
  r->poll.data = r;
  uv_async_init(loop, &r->resume, on_resume);
  r->resume.data = r;
  q->wake = &r->resume;
  // it matters only while reading is paused; the poll handle is what keeps the loop alive
  uv_unref((uv_handle_t *)&r->resume);
  r->handles_open = 2;
  napi_value obj, fdv, fclose, funref, fpauses;
  CHECK(napi_create_object(env, &obj));
  CHECK(napi_create_reference(env, argv[1], 1, &r->callback));
  CHECK(napi_create_reference(env, obj, 1, &r->self));
  CHECK(napi_create_int32(env, fd, &fdv));
  CHECK(napi_set_named_property(env, obj, "fd", fdv));
  CHECK(napi_wrap(env, obj, r, on_finalize, NULL, NULL));
  CHECK(napi_create_function(env, "close", NAPI_AUTO_LENGTH, ReceiverClose, NULL, &fclose));
  CHECK(napi_set_named_property(env, obj, "close", fclose));
  CHECK(napi_create_function(env, "unref", NAPI_AUTO_LENGTH, ReceiverUnref, NULL, &funref));
  CHECK(napi_set_named_property(env, obj, "unref", funref));
  CHECK(napi_create_function(env, "pauses", NAPI_AUTO_LENGTH, ReceiverPauses, NULL, &fpauses));
  CHECK(napi_set_named_property(env, obj, "pauses", fpauses));
  uv_poll_start(&r->poll, UV_READABLE, on_readable);
  return obj;
}

// sendNoWait(fd, data) -> bytes sent: send() with MSG_DONTWAIT, so a full socket is EAGAIN at
// once. O_NONBLOCK would do that too, but it belongs to the open file description, which fd 2
// shares with every worker (stdio inherited): they would get EAGAIN on their own writes.
static napi_value SendNoWait(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  int32_t fd;
  void *data;
  size_t dlen;
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  CHECK(napi_get_value_int32(env, argv[0], &fd));
  CHECK(napi_get_buffer_info(env, argv[1], &data, &dlen));
  ssize_t n;
  do n = send(fd, data, dlen, MSG_DONTWAIT | MSG_NOSIGNAL);
  while (n < 0 && errno == EINTR);
  if (n < 0) return throw_errno(env, errno, "send", NULL);
  napi_value out;
  CHECK(napi_create_int64(env, (int64_t)n, &out));
  return out;
}

// peerCred(fd) -> { pid, uid, gid }: the kernel's credentials of the process at the other end
// of a connected unix socket (SO_PEERCRED, taken at connect()/listen() time, unforgeable).
static napi_value PeerCred(napi_env env, napi_callback_info info) {
  int32_t fd;
  if (!fd_arg(env, info, &fd)) return NULL;
  struct ucred cr;
  socklen_t l = sizeof cr;
  if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cr, &l) < 0) return throw_errno(env, errno, "getsockopt", "SO_PEERCRED");
  napi_value out;
  CHECK(napi_create_object(env, &out));
  set_int(env, out, "pid", cr.pid);
  set_int(env, out, "uid", cr.uid);
  set_int(env, out, "gid", cr.gid);
  return out;
}

// peerGone(fd) -> bool: the other end of a connected unix stream socket has closed (or shut
// down both ways), so nothing written to it will be read: poll(2)'s POLLHUP, which the kernel
// sets at once for unix sockets. A peer that only shut down its writing side is not gone.
static napi_value PeerGone(napi_env env, napi_callback_info info) {
  int32_t fd;
  if (!fd_arg(env, info, &fd)) return NULL;
  struct pollfd p = {.fd = fd, .events = POLLIN};
  int r;
  do r = poll(&p, 1, 0);
  while (r < 0 && errno == EINTR);
  if (r < 0) return throw_errno(env, errno, "poll", NULL);
  napi_value out;
  CHECK(napi_get_boolean(env, (p.revents & (POLLHUP | POLLERR | POLLNVAL)) != 0, &out));
  return out;
}

// argMax() -> sysconf(_SC_ARG_MAX): glibc derives it from the stack limit (RLIMIT_STACK / 4),
// as the kernel's execve() does; the caller applies the kernel's bounds.
static napi_value ArgMax(napi_env env, napi_callback_info info) {
  (void)info;
  long v = sysconf(_SC_ARG_MAX);
  napi_value out;
  CHECK(napi_create_double(env, v > 0 ? (double)v : -1, &out));
  return out;
}

// randomBytes(n) -> Buffer of n bytes from getrandom(2) (blocks only before the kernel's pool
// is first initialised, early in boot).
static napi_value RandomBytes(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1], out;
  uint32_t n;
  void *data;
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  CHECK(napi_get_value_uint32(env, argv[0], &n));
  if (n > 256) { napi_throw_range_error(env, NULL, "randomBytes: at most 256 bytes"); return NULL; }
  CHECK(napi_create_buffer(env, n, &data, &out));
  for (size_t got = 0; got < n;) {
    ssize_t r = getrandom((char *)data + got, n - got, 0);
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) return throw_errno(env, errno, "getrandom", NULL);
    got += (size_t)r;
  }
  return out;
}

static napi_value Init(napi_env env, napi_value exports) {
  napi_property_descriptor props[] = {
    {"listenSocket", NULL, ListenSocket, NULL, NULL, NULL, napi_enumerable, NULL},
    {"sockInfo", NULL, SockInfo, NULL, NULL, NULL, napi_enumerable, NULL},
    {"setCloexec", NULL, SetCloexec, NULL, NULL, NULL, napi_enumerable, NULL},
    {"dupCloexec", NULL, DupCloexec, NULL, NULL, NULL, napi_enumerable, NULL},
    {"notifySend", NULL, NotifySend, NULL, NULL, NULL, napi_enumerable, NULL},
    {"notifyBind", NULL, NotifyBind, NULL, NULL, NULL, napi_enumerable, NULL},
    {"sendNoWait", NULL, SendNoWait, NULL, NULL, NULL, napi_enumerable, NULL},
    {"peerCred", NULL, PeerCred, NULL, NULL, NULL, napi_enumerable, NULL},
    {"peerGone", NULL, PeerGone, NULL, NULL, NULL, napi_enumerable, NULL},
    {"setSockOpt", NULL, SetSockOpt, NULL, NULL, NULL, napi_enumerable, NULL},
    {"getSockOpt", NULL, GetSockOpt, NULL, NULL, NULL, napi_enumerable, NULL},
    {"streamSocket", NULL, StreamSocket, NULL, NULL, NULL, napi_enumerable, NULL},
    {"argMax", NULL, ArgMax, NULL, NULL, NULL, napi_enumerable, NULL},
    {"randomBytes", NULL, RandomBytes, NULL, NULL, NULL, napi_enumerable, NULL},
  };
  napi_define_properties(env, exports, sizeof props / sizeof props[0], props);
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, Init)
