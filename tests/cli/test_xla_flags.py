"""The CLI's XLA CPU memory flag: added once, never over a user's own choice."""

from kt.cli.common import XLA_CPU_MEMORY_FLAGS, use_memory_scheduler

FLAG = XLA_CPU_MEMORY_FLAGS[0]


def test_added_to_empty_environment():
    env: dict[str, str] = {}
    assert use_memory_scheduler(env) == FLAG
    assert env["XLA_FLAGS"] == FLAG


def test_kept_beside_other_flags_and_idempotent():
    env = {"XLA_FLAGS": "--xla_force_host_platform_device_count=2"}
    use_memory_scheduler(env)
    use_memory_scheduler(env)
    assert env["XLA_FLAGS"] == f"--xla_force_host_platform_device_count=2 {FLAG}"


def test_user_choice_wins():
    name = FLAG.split("=")[0]
    env = {"XLA_FLAGS": f"{name}=true"}
    assert use_memory_scheduler(env) == f"{name}=true"


def test_importing_kt_sets_nothing():
    import os
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if k != "XLA_FLAGS"}
    code = "import os, kt, kt.cli; print(os.environ.get('XLA_FLAGS', ''))"
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True).stdout
    assert out.strip() == ""
