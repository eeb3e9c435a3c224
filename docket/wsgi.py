"""The WSGI application, as gunicorn serves it (``docket.run.web_serving_args``).

What loading made (Django, the apps, the URL and template machinery: some 110,000 objects the garbage
collector tracks) is frozen, so a full collection no longer walks it. A collection holds the GIL of every
thread of the process: a reviewer's claim waits behind it. Under ``bench.live``, a web worker's longest
collection took 75-95 ms of CPU unfrozen, 19-46 ms frozen (full collections come more often then, for
about as much CPU in all: what is shortened is the wait). Loaded before the fork (``--preload``), the
frozen objects stay shared between the workers too.
"""

import gc
import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "docket.settings")
application = get_wsgi_application()

gc.collect()
gc.freeze()
