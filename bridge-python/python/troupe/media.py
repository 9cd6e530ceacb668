"""Audio chunks and video frames, as troupe's media pipelines exchange them.

Both hold numpy arrays; values received from the host hold read-only views of shared
memory. They convert to and from the host's ``Audio`` and ``VideoFrame`` values.
"""

PIXEL_FORMATS = ("gray8", "rgb24", "rgba32", "yuv420p")


class Audio:
    """Interleaved samples shaped ``[frames, channels]`` (or ``[frames]`` when mono),
    ``float32`` or ``int16``, with their rate, channel count and start time."""

    __module__ = "troupe"
    __slots__ = ("samples", "sample_rate", "channels", "timestamp_ns")

    def __init__(self, samples, sample_rate, channels=None, timestamp_ns=0):
        if channels is None:
            shape = getattr(samples, "shape", ())
            channels = shape[1] if len(shape) == 2 else 1
        self.samples = samples
        self.sample_rate = int(sample_rate)
        self.channels = int(channels)
        self.timestamp_ns = int(timestamp_ns)

    @property
    def frames(self):
        """Samples per channel."""
        return self.samples.shape[0]

    @property
    def duration(self):
        """How long the chunk plays, in seconds."""
        return self.frames / self.sample_rate

    def __repr__(self):
        return (
            f"Audio({self.frames} frames x {self.channels} ch @ {self.sample_rate} Hz, "
            f"{self.samples.dtype}, t={self.timestamp_ns} ns)"
        )


class VideoFrame:
    """``uint8`` pixels in a format (one of ``PIXEL_FORMATS``), with the frame's size and
    presentation time."""

    __module__ = "troupe"
    __slots__ = ("pixels", "width", "height", "format", "timestamp_ns")

    def __init__(self, pixels, width, height, format="rgb24", timestamp_ns=0):
        if format not in PIXEL_FORMATS:
            raise ValueError(f"unknown pixel format {format!r}: one of {PIXEL_FORMATS}")
        self.pixels = pixels
        self.width = int(width)
        self.height = int(height)
        self.format = format
        self.timestamp_ns = int(timestamp_ns)

    def __repr__(self):
        return (
            f"VideoFrame({self.width}x{self.height} {self.format}, "
            f"t={self.timestamp_ns} ns)"
        )
