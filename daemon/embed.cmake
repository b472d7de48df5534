# embed.cmake: writes the file IN into the C source OUT as the byte array
# NAME[] (NUL-terminated) and NAME_len, so the daemon carries its page
# with it and serves it without touching the file system.
file(READ ${IN} hex HEX)
string(REGEX REPLACE "([0-9a-f][0-9a-f])" "0x\\1," bytes "${hex}")
file(WRITE ${OUT} "/* generated from ${IN} by embed.cmake */\n"
  "const char ${NAME}[] = {${bytes} 0x00};\n"
  "const unsigned long ${NAME}_len = sizeof(${NAME}) - 1;\n")
