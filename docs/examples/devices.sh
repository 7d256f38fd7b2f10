XLA_FLAGS=--xla_force_host_platform_device_count=4 kt train datasets/assist2009_sample/train.csv --model dkt --out runs/dkt --devices 4 --epochs 1
