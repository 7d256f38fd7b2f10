# on host0
KT_COORDINATOR_ADDRESS=host0:12345 KT_NUM_PROCESSES=2 KT_PROCESS_ID=0 kt train train.csv --model dkt --out runs/dkt --distributed
# on host1
KT_COORDINATOR_ADDRESS=host0:12345 KT_NUM_PROCESSES=2 KT_PROCESS_ID=1 kt train train.csv --model dkt --out runs/dkt --distributed
