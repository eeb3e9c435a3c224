"""The WSGI application, as gunicorn serves it (``docket.run.web_serving_args``).

Two settings of the serving process, made here because only a web process imports this module:

- What loading made (Django, the apps, the URL and template machinery: some 110,000 objects the
  garbage collector tracks) is frozen, so a full collection no longer walks it. A collection holds
  the GIL of every thread of the process: a reviewer's claim waits behind it. Under ``bench.live``,
  a web worker's longest collection took 82-93 ms of CPU unfrozen, 32 ms frozen (full collections
  come more often then, for about as much CPU in all: what is shortened is the wait). Loaded before
  the fork (``--preload``), the frozen objects stay shared between the workers too.
- The interpreter hands the GIL over after 1 ms instead of 5 ms. A thread back from the database
  waits for the GIL while another runs Python (an intake batch builds its rows for tens of
  milliseconds): with 5 ms, a claim's few round trips each could wait that long for a turn.
"""

import gc
import os
import sys

from django.core.wsgi import get_wsgi_application

SWITCH_INTERVAL_SECONDS = 0.001

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "docket.settings")
application = get_wsgi_application()

gc.collect()
gc.freeze()
sys.setswitchinterval(SWITCH_INTERVAL_SECONDS)
