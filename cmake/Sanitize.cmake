# FPYGA_SANITIZE: AddressSanitizer + UndefinedBehaviorSanitizer on everything we build.
if(FPYGA_SANITIZE)
  add_compile_options(-fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined)
  add_link_options(-fsanitize=address,undefined)
endif()
