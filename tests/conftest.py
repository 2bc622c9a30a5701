"""Suite-wide test settings.

Hypothesis runs derandomized by default, so a CI run explores the same examples as the last
green run and cannot fail by chance on an example no one has seen; set
``HYPOTHESIS_PROFILE=explore`` to search fresh random examples (a rare case found that way,
such as CMUdict's vowelless "sh", becomes an explicit test)."""

import os

from hypothesis import settings

settings.register_profile("ci", derandomize=True)
settings.register_profile("explore", derandomize=False)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))
