{
  "targets": [
    {
      "target_name": "packet_socket",
      "sources": ["packet_socket.c"],
      "cflags": ["-O2", "-Wall", "-Wextra"]
    }
  ]
}
