{
  "targets": [
    {
      "target_name": "baton_native",
      "sources": ["baton_native.c"],
      "cflags": ["-Wall", "-Wextra", "-Wno-unused-parameter", "-O2"]
    }
  ]
}
