# CUDA backend (issue 6), included from CMakeLists.txt after the _core target.
#
#   KQUANTS_CUDA        AUTO (default): build csrc/cuda/ when a CUDA compiler is
#                       found, else the stub; ON: a missing CUDA compiler is an
#                       error; OFF: always the stub.
#   KQUANTS_CUDA_ARCHS  CUDA architectures, e.g. "80" or "80;90". Default: the
#                       local GPU's compute capability (nvidia-smi), else 80;90
#                       (A100 and H100). CI builds one ("80") to stay fast.
#
# Exactly one of two static libraries is linked into _core, behind the same
# header (csrc/gpu/cuda.h), so shared code has no #ifdef for CUDA:
#   kq_cuda       csrc/cuda/*.cu + *.cpp, with the CUDA runtime linked
#                 statically (CUDA::cudart_static): the module imports on
#                 machines without a driver and reports "no driver" at run time.
#   kq_cuda_stub  csrc/cuda_stub/*.cpp: every entry point raises kq::Error.

set(KQUANTS_CUDA "AUTO" CACHE STRING "CUDA backend: AUTO, ON or OFF")
set_property(CACHE KQUANTS_CUDA PROPERTY STRINGS AUTO ON OFF)
set(KQUANTS_CUDA_ARCHS "" CACHE STRING "CUDA architectures (default: the local GPU, else 80;90)")
string(TOUPPER "${KQUANTS_CUDA}" _kq_cuda_mode)
if(NOT _kq_cuda_mode MATCHES "^(AUTO|ON|OFF)$")
  message(FATAL_ERROR "KQUANTS_CUDA must be AUTO, ON or OFF (got '${KQUANTS_CUDA}')")
endif()

set(KQ_CUDA_ENABLED OFF)
if(NOT _kq_cuda_mode STREQUAL "OFF")
  include(CheckLanguage)
  check_language(CUDA)
  if(CMAKE_CUDA_COMPILER)
    set(KQ_CUDA_ENABLED ON)
  elseif(_kq_cuda_mode STREQUAL "ON")
    message(FATAL_ERROR "KQUANTS_CUDA=ON but no CUDA compiler was found (set CMAKE_CUDA_COMPILER or put nvcc on PATH)")
  else()
    message(STATUS "kquants: no CUDA compiler found, building the CUDA stub")
  endif()
endif()

if(KQ_CUDA_ENABLED)
  # Architectures must be known before enable_language(CUDA).
  set(_kq_archs "${KQUANTS_CUDA_ARCHS}")
  if(NOT _kq_archs)
    find_program(KQ_NVIDIA_SMI nvidia-smi)
    if(KQ_NVIDIA_SMI)
      execute_process(COMMAND ${KQ_NVIDIA_SMI} --query-gpu=compute_cap --format=csv,noheader
                      OUTPUT_VARIABLE _kq_caps RESULT_VARIABLE _kq_smi_rc ERROR_QUIET OUTPUT_STRIP_TRAILING_WHITESPACE)
      if(_kq_smi_rc EQUAL 0 AND _kq_caps)
        # "9.0\n8.6" -> "90;86" (one entry per distinct GPU model)
        string(REPLACE "." "" _kq_caps "${_kq_caps}")
        string(REGEX REPLACE "[\r\n]+" ";" _kq_caps "${_kq_caps}")
        list(REMOVE_DUPLICATES _kq_caps)
        set(_kq_archs "${_kq_caps}")
      endif()
    endif()
  endif()
  if(NOT _kq_archs)
    # No GPU visible: A100 (sm_80) machine code, H100 (sm_90) machine code
    # plus compute_90 PTX so newer GPUs can JIT it.
    set(_kq_archs "80-real;90")
  endif()
  set(CMAKE_CUDA_ARCHITECTURES "${_kq_archs}")
  enable_language(CUDA)
  find_package(CUDAToolkit REQUIRED)
  set(CMAKE_CUDA_STANDARD 17)
  set(CMAKE_CUDA_STANDARD_REQUIRED ON)
  message(STATUS "kquants: CUDA backend ON (nvcc ${CMAKE_CUDA_COMPILER_VERSION}, architectures ${_kq_archs})")

  file(GLOB KQ_CUDA_SOURCES CONFIGURE_DEPENDS
    ${CMAKE_CURRENT_SOURCE_DIR}/csrc/cuda/*.cu ${CMAKE_CURRENT_SOURCE_DIR}/csrc/cuda/*.cpp)
  add_library(kq_cuda STATIC ${KQ_CUDA_SOURCES})
  set_target_properties(kq_cuda PROPERTIES CUDA_SEPARABLE_COMPILATION OFF)
  target_include_directories(kq_cuda PRIVATE ${CMAKE_CURRENT_SOURCE_DIR}/csrc ${CMAKE_CURRENT_BINARY_DIR}/generated)
  string(REPLACE ";" "," _kq_archs_str "${_kq_archs}")
  target_compile_definitions(kq_cuda PRIVATE KQ_CUDA_ARCHS_STR="${_kq_archs_str}")
  # Device code must reproduce the CPU reference bit for bit:
  #  -fmad=false          no fused multiply-add contraction (= -ffp-contract=off)
  #  -prec-div/-prec-sqrt IEEE round-to-nearest division and square root
  #  -ftz=false           keep fp32 denormals (the golden 'tiny' case has them)
  # Host code seen by nvcc gets the project's warning flags.
  # KQUANTS_WERROR also makes nvcc's own diagnostics errors.
  set(_kq_cuda_host_warn -Wall,-Wextra)
  set(_kq_cuda_werror)
  if(KQUANTS_WERROR)
    set(_kq_cuda_host_warn ${_kq_cuda_host_warn},-Werror)
    set(_kq_cuda_werror -Werror=all-warnings)
  endif()
  target_compile_options(kq_cuda PRIVATE
    $<$<COMPILE_LANGUAGE:CUDA>:-fmad=false -prec-div=true -prec-sqrt=true -ftz=false -Xcompiler=${_kq_cuda_host_warn} ${_kq_cuda_werror}>
    $<$<COMPILE_LANGUAGE:CXX>:${KQ_COMMON_FLAGS}>)
  target_link_libraries(kq_cuda PUBLIC kq_core CUDA::cudart_static)
else()
  file(GLOB KQ_CUDA_STUB_SOURCES CONFIGURE_DEPENDS ${CMAKE_CURRENT_SOURCE_DIR}/csrc/cuda_stub/*.cpp)
  add_library(kq_cuda STATIC ${KQ_CUDA_STUB_SOURCES})
  target_include_directories(kq_cuda PRIVATE ${CMAKE_CURRENT_SOURCE_DIR}/csrc)
  target_compile_options(kq_cuda PRIVATE ${KQ_COMMON_FLAGS})
  target_link_libraries(kq_cuda PUBLIC kq_core)
endif()

# Host emulation of the device code (csrc/cuda_emu), built in every
# configuration: kquants._core.cuda_emulation_check() compares the device
# quantizers, compiled for the CPU, with the reference, so CI checks the CUDA
# port byte for byte even without a GPU. The device headers carry
# '#pragma unroll', which the host compiler does not know.
file(GLOB KQ_CUDA_EMU_SOURCES CONFIGURE_DEPENDS ${CMAKE_CURRENT_SOURCE_DIR}/csrc/cuda_emu/*.cpp)
add_library(kq_cuda_emu STATIC ${KQ_CUDA_EMU_SOURCES})
target_compile_options(kq_cuda_emu PRIVATE ${KQ_COMMON_FLAGS} -Wno-unknown-pragmas)
target_link_libraries(kq_cuda_emu PUBLIC kq_core)

target_link_libraries(_core PRIVATE kq_cuda kq_cuda_emu)
