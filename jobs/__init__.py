"""RQ plumbing only: the queue and enqueue helpers (`queue.py`, `pipelined_redis.py`), the job
entry point (`tasks.py`), the worker and its start-up (`worker.py`), and crash recovery
(`recovery.py`). What a job *does* lives in `app/handling/`."""
