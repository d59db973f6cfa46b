"""kombu's filesystem transport (the zero-config broker) with messages that appear whole.

kombu writes a message by creating its file in the queue folder, then locking and filling it; a consumer
polling the folder moves and reads files without the lock, so it can take a message while it is still empty
and crash on `json.loads("")` (kombu issue #1551: it took our test worker down mid-run). Here the message is
written under a name the consumer skips, then renamed into place, which is atomic on one filesystem: a
consumer sees the whole message or none of it. settings.py selects this transport for `filesystem://`.
"""

import os
import uuid
from time import monotonic

from kombu.transport import filesystem
from kombu.utils.encoding import str_to_bytes
from kombu.utils.json import dumps


class Channel(filesystem.Channel):
    def _put(self, queue, payload, **kwargs):
        """Put `payload` onto `queue`, under kombu's own file name, all at once."""
        name = f"{int(round(monotonic() * 1000))}_{uuid.uuid4()}.{queue}.msg"
        final = os.path.join(self.data_folder_out, name)
        partial = os.path.join(self.data_folder_out, f".{name}.partial")  # not "<queue>.msg": never consumed
        try:
            with open(partial, "wb") as file:
                file.write(str_to_bytes(dumps(payload)))
            os.replace(partial, final)
        except OSError as exc:
            raise filesystem.ChannelError(f"Cannot add file {final!r} to directory") from exc


class Transport(filesystem.Transport):
    Channel = Channel
