"""Writes the gateway's spoken apology, said to a caller whose call the gateway has to shed
(the bus out of reach): eSpeak NG's voice as a phone line carries it, raw mu-law at 8 kHz.

    python -m voicebus_devstack.apology services/gateway/src/voicebus_gateway/assets/apology.ulaw

The gateway has no speech synthesis of its own, and the TTS service is across the bus it
cannot reach then: the words are recorded once, here, and shipped with it.
"""

from __future__ import annotations

import sys
from pathlib import Path

from voicebus_devstack.speech import telephone_speech

APOLOGY = "Sorry, we are having technical trouble. Please call again later. Goodbye."


def main() -> None:
    Path(sys.argv[1]).write_bytes(telephone_speech(APOLOGY))


if __name__ == "__main__":
    main()
