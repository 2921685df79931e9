{
  "targets": [
    {
      "target_name": "baton_native",
      "sources": ["baton_native.c"],
      "cflags": ["-Wall", "-Wextra", "-Wno-unused-parameter", "-O2"]
    },
    {
      "target_name": "baton_signal_guard",
      "type": "loadable_module",
      "sources": ["signal_guard.c"],
      "cflags": ["-Wall", "-Wextra", "-O2"],
      "libraries": ["-ldl"]
    }
  ]
}
