export XLA_FLAGS=--xla_force_host_platform_device_count=2 JAX_PLATFORMS=cpu
export KT_COORDINATOR_ADDRESS=127.0.0.1:12345 KT_NUM_PROCESSES=2
KT_PROCESS_ID=0 kt train datasets/assist2009_sample/train.csv --model dkt --out runs/dkt --seed 3 --epochs 1 --distributed &
KT_PROCESS_ID=1 kt train datasets/assist2009_sample/train.csv --model dkt --out runs/dkt --seed 3 --epochs 1 --distributed &
wait
