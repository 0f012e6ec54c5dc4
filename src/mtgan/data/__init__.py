"""Data: bundled and user data sets, derived domains, and the TaskSet that samples all tasks."""

from mtgan.data.domains import DOMAINS
from mtgan.data.tasks import build_tasks
from mtgan.data.taskset import TaskSet

__all__ = ["DOMAINS", "TaskSet", "build_tasks"]
