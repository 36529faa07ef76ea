"""MiniCity: synthetic street scenes written in the Cityscapes layout.

MiniCity is the data of the CPU demo, the tests and the notebooks: no download, no licence, a few
seconds to generate. It is written exactly like Cityscapes, so the ordinary loader
(:mod:`dgcn.datasets.cityscapes`) reads it::

    out/leftImg8bit/<split>/<city>/<city>_<seq>_000019_leftImg8bit.png   RGB uint8
    out/gtFine/<split>/<city>/<city>_<seq>_000019_gtFine_labelIds.png    L uint8, Cityscapes ids
    out/gtFine/<split>/<city>/<city>_<seq>_000019_gtFine_color.png       RGB, colours of the ids
    out/minicity.json                                                    parameters, written last

Every split has its own invented cities, ``seq`` is the image index, and image ``i`` of a split
is drawn from ``np.random.default_rng([seed, split_index, i])``: the same seed gives
byte-identical files whatever the number of images asked for.

Generation runs at roughly 70-80 images/s at 128x256 on one CPU core (PNG writing included) and
about 0.4 s per image at 1024x2048.

The modules, from the bottom up:

* :mod:`~dgcn.datasets.minicity.drawing`: the pinhole camera, world rectangles projected to
  pixels, shape masks, and the canvas that paints a label map and a material map together;
* :mod:`~dgcn.datasets.minicity.things`: the materials and painters of every object (buildings,
  walls, fences, trees, persons, riders, vehicles, poles, signs, lights, clutter);
* :mod:`~dgcn.datasets.minicity.traffic`: the big vehicles' lengths and places on the cross
  street's lanes, version 2's mixed traffic, and :class:`BigVehicle`, the record of one as
  drawn (``generate_scene(..., vehicles=[])``);
* :mod:`~dgcn.datasets.minicity.scene`: one scene, :func:`generate_scene`, composed and
  rendered; its docstring gives the generative rules and the deliberately ambiguous classes
  (:data:`CONTEXT_CLASSES`);
* :mod:`~dgcn.datasets.minicity.files`: the dataset on disk, :func:`make_minicity`,
  :func:`ensure_minicity` and :func:`write_preview` (generate from one process at a time).
"""

from dgcn.datasets.minicity.files import (
    CITIES,
    DEFAULT_ROOT,
    SPLITS,
    ensure_minicity,
    make_minicity,
    write_preview,
    write_sample,
)
from dgcn.datasets.minicity.scene import CONTEXT_CLASSES, GENERATOR_VERSION, generate_scene
from dgcn.datasets.minicity.traffic import BigVehicle

__all__ = [
    "CITIES",
    "BigVehicle",
    "CONTEXT_CLASSES",
    "DEFAULT_ROOT",
    "GENERATOR_VERSION",
    "SPLITS",
    "ensure_minicity",
    "generate_scene",
    "make_minicity",
    "write_preview",
    "write_sample",
]
