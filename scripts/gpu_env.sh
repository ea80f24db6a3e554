# Sourced by the GPU scripts (bench_gpu.sh, experiment_gpu.sh): points GoMLX at
# the XLA CUDA plugin of the machine's JAX installation (package
# jax-cuda13-pjrt), as docs/model.md#cpu-and-gpu describes, for a machine that
# has no network and no Go. PYTHON names the Python that holds JAX (python3).
# GoMLX looks for pjrt_c_api_<name>_plugin.so; JAX names its file differently,
# hence the link.
SP=$(${PYTHON:-python3} -c "import site;print(site.getsitepackages()[0])")
if [ -f "$SP/jax_plugins/xla_cuda13/xla_cuda_plugin.so" ]; then
  ln -sf "$SP/jax_plugins/xla_cuda13/xla_cuda_plugin.so" "$SP/jax_plugins/xla_cuda13/pjrt_c_api_cuda_plugin.so"
else
  echo "warning: no $SP/jax_plugins/xla_cuda13/xla_cuda_plugin.so (package jax-cuda13-pjrt); ssp may not find XLA" >&2
fi
export PJRT_PLUGIN_LIBRARY_PATH=$SP/jax_plugins/xla_cuda13 XLA_FLAGS=--xla_gpu_cuda_data_dir=$SP/nvidia \
  GOMLX_NO_AUTO_INSTALL=1 GOMLX_BACKEND=${BACKEND:-xla:cuda} GOPJRT_CUDA_CHECKS=0
