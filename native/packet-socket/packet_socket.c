/*
 * A Linux packet socket for sending Ethernet frames with a virtio-net header (PACKET_VNET_HDR),
 * the one thing colo-proxy's `run` needs that libpcap (and so the `cap` package) cannot do: hand
 * the kernel a TCP frame of up to 64 KiB marked for segmentation offload (GSO), with its checksum
 * left to the kernel, as a guest's virtio-net driver does. The kernel then passes the frame whole
 * to an interface that can take it (a veth or NIC with TSO) or cuts it in software, instead of
 * colo-proxy cutting it into MTU-sized segments in JavaScript and sending each with a system call.
 *
 * Node-API (C), so it loads in any Node.js >= 20 and in worker threads. Functions:
 *   open(ifindex) -> fd       a send-only socket bound to the interface; throws Error (errno
 *       text; `code` the errno number as a string)
 *   send(fd, ifindex, headers, payload, gsoType, gsoSize, hdrLen, csumStart, csumOffset) -> 0 or errno
 *       one frame, `headers` then `payload` (two Uint8Arrays, gathered by sendmsg: no copy), to
 *       the interface the socket is bound to (`ifindex`, given again with the frame's EtherType:
 *       a socket bound to protocol 0 leaves the packet's protocol to the kernel, which older
 *       kernels do not derive, and segmentation needs it); never throws for a refused frame: the
 *       caller counts it, as a NIC drops a frame
 *   ignoreOutgoing(fd) -> 0 or errno   sets PACKET_IGNORE_OUTGOING (Linux >= 4.20) on a packet
 *       socket, so a capture socket stops seeing frames sent on its interface by other sockets
 *   copy(target, at, source)  memcpy of `source` into `target` from byte `at` (bounds checked):
 *       V8 copies into a SharedArrayBuffer with relaxed atomic stores, several times slower,
 *       and the send thread's ring is one
 *   close(fd)
 * gsoType is VIRTIO_NET_HDR_GSO_* (0 none, 1 TCPv4, 4 TCPv6, | 0x80 ECN); csumStart < 0 means the
 * frame's checksums are complete (no VIRTIO_NET_HDR_F_NEEDS_CSUM).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <string.h>
#include <unistd.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <stdio.h>
#include <linux/if_packet.h>
#include <linux/virtio_net.h>
#include <node_api.h>

#define CHECK(call)                                                                                \
  do {                                                                                             \
    if ((call) != napi_ok) return NULL;                                                            \
  } while (0)

/* Throws Error(`what: strerror`) with `code` the errno's number, as a string (Node-API codes are strings). */
static napi_value throw_errno(napi_env env, const char *what, int err) {
  char message[256], code[16];
  snprintf(message, sizeof message, "%s: %s", what, strerror(err));
  snprintf(code, sizeof code, "%d", err);
  napi_throw_error(env, code, message);
  return NULL;
}

static napi_value open_socket(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  int32_t ifindex;
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 1 || napi_get_value_int32(env, argv[0], &ifindex) != napi_ok || ifindex <= 0) {
    napi_throw_type_error(env, NULL, "open(ifindex): ifindex must be a positive integer");
    return NULL;
  }
  /* Protocol 0: this socket receives nothing, it only sends. */
  int fd = socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC, 0);
  if (fd < 0) return throw_errno(env, "packet socket", errno);
  int on = 1;
  if (setsockopt(fd, SOL_PACKET, PACKET_VNET_HDR, &on, sizeof on) < 0) {
    int err = errno;
    close(fd);
    return throw_errno(env, "PACKET_VNET_HDR", err);
  }
  struct sockaddr_ll addr;
  memset(&addr, 0, sizeof addr);
  addr.sll_family = AF_PACKET;
  addr.sll_protocol = 0;
  addr.sll_ifindex = ifindex;
  if (bind(fd, (struct sockaddr *)&addr, sizeof addr) < 0) {
    int err = errno;
    close(fd);
    return throw_errno(env, "bind", err);
  }
  napi_value result;
  CHECK(napi_create_int32(env, fd, &result));
  return result;
}

/* The bytes of a Uint8Array (its own window of its buffer). */
static int bytes_of(napi_env env, napi_value value, void **data, size_t *length) {
  napi_typedarray_type type;
  napi_value arraybuffer;
  size_t byte_offset;
  return napi_get_typedarray_info(env, value, &type, length, data, &arraybuffer, &byte_offset) == napi_ok && type == napi_uint8_array;
}

static napi_value send_frame(napi_env env, napi_callback_info info) {
  size_t argc = 9;
  napi_value argv[9];
  int32_t fd, ifindex, gso_type, gso_size, hdr_len, csum_start, csum_offset;
  size_t head_length, payload_length;
  void *head, *payload;
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 9 || napi_get_value_int32(env, argv[0], &fd) != napi_ok || napi_get_value_int32(env, argv[1], &ifindex) != napi_ok ||
      !bytes_of(env, argv[2], &head, &head_length) || !bytes_of(env, argv[3], &payload, &payload_length) ||
      napi_get_value_int32(env, argv[4], &gso_type) != napi_ok || napi_get_value_int32(env, argv[5], &gso_size) != napi_ok ||
      napi_get_value_int32(env, argv[6], &hdr_len) != napi_ok || napi_get_value_int32(env, argv[7], &csum_start) != napi_ok ||
      napi_get_value_int32(env, argv[8], &csum_offset) != napi_ok) {
    napi_throw_type_error(env, NULL, "send(fd, ifindex, headers: Uint8Array, payload: Uint8Array, gsoType, gsoSize, hdrLen, csumStart, csumOffset)");
    return NULL;
  }
  /* The EtherType: bytes 12-13 of the frame, which may start in either part. */
  unsigned char type[2] = {0, 0};
  for (size_t i = 0; i < 2; i++) {
    size_t at = 12 + i;
    if (at < head_length) type[i] = ((unsigned char *)head)[at];
    else if (at - head_length < payload_length) type[i] = ((unsigned char *)payload)[at - head_length];
  }
  struct sockaddr_ll to;
  memset(&to, 0, sizeof to);
  to.sll_family = AF_PACKET;
  to.sll_ifindex = ifindex;
  memcpy(&to.sll_protocol, type, 2); /* already in network order */
  struct virtio_net_hdr vnet;
  memset(&vnet, 0, sizeof vnet);
  vnet.gso_type = (uint8_t)gso_type;
  vnet.gso_size = (uint16_t)gso_size;
  vnet.hdr_len = (uint16_t)hdr_len;
  if (csum_start >= 0) {
    vnet.flags = VIRTIO_NET_HDR_F_NEEDS_CSUM;
    vnet.csum_start = (uint16_t)csum_start;
    vnet.csum_offset = (uint16_t)csum_offset;
  }
  struct iovec iov[3] = {{&vnet, sizeof vnet}, {head, head_length}, {payload, payload_length}};
  struct msghdr msg;
  memset(&msg, 0, sizeof msg);
  msg.msg_name = &to;
  msg.msg_namelen = sizeof to;
  msg.msg_iov = iov;
  msg.msg_iovlen = 3;
  int err = 0;
  while (sendmsg(fd, &msg, 0) < 0) {
    if (errno == EINTR) continue;
    err = errno;
    break;
  }
  napi_value result;
  CHECK(napi_create_int32(env, err, &result));
  return result;
}

/* The one integer argument of a function called as `usage`; false (a TypeError thrown) when there is none. */
static int fd_argument(napi_env env, napi_callback_info info, const char *usage, int32_t *fd) {
  size_t argc = 1;
  napi_value argv[1];
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) == napi_ok && argc >= 1 && napi_get_value_int32(env, argv[0], fd) == napi_ok) return 1;
  napi_throw_type_error(env, NULL, usage);
  return 0;
}

static napi_value ignore_outgoing(napi_env env, napi_callback_info info) {
  int32_t fd;
  if (!fd_argument(env, info, "ignoreOutgoing(fd)", &fd)) return NULL;
  int on = 1;
  int err = setsockopt(fd, SOL_PACKET, PACKET_IGNORE_OUTGOING, &on, sizeof on) < 0 ? errno : 0;
  napi_value result;
  CHECK(napi_create_int32(env, err, &result));
  return result;
}

static napi_value copy_bytes(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  void *target, *source;
  size_t target_length, source_length;
  int64_t at;
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 3 || !bytes_of(env, argv[0], &target, &target_length) || napi_get_value_int64(env, argv[1], &at) != napi_ok ||
      !bytes_of(env, argv[2], &source, &source_length) || at < 0 || (uint64_t)at + source_length > target_length) {
    napi_throw_range_error(env, NULL, "copy(target: Uint8Array, at, source: Uint8Array): source must fit target from at");
    return NULL;
  }
  memcpy((char *)target + at, source, source_length);
  return NULL;
}

static napi_value close_socket(napi_env env, napi_callback_info info) {
  int32_t fd;
  if (!fd_argument(env, info, "close(fd)", &fd)) return NULL;
  if (fd >= 0) close(fd);
  return NULL;
}

NAPI_MODULE_INIT() {
  napi_property_descriptor functions[] = {
      {"open", NULL, open_socket, NULL, NULL, NULL, napi_enumerable, NULL},
      {"send", NULL, send_frame, NULL, NULL, NULL, napi_enumerable, NULL},
      {"ignoreOutgoing", NULL, ignore_outgoing, NULL, NULL, NULL, napi_enumerable, NULL},
      {"copy", NULL, copy_bytes, NULL, NULL, NULL, napi_enumerable, NULL},
      {"close", NULL, close_socket, NULL, NULL, NULL, napi_enumerable, NULL},
  };
  if (napi_define_properties(env, exports, sizeof functions / sizeof functions[0], functions) != napi_ok) return NULL;
  return exports;
}
