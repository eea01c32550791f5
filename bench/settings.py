"""Settings for the bare-view ceiling: the product's settings, the bench's URLs."""

from appease.settings import *  # noqa: F403

ROOT_URLCONF = "bench.bareview"
