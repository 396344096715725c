"""Turn skin-lesion datasets into MONAI datalists for the UltraLight VM-UNet bundle.

  python -m prepare DATASET --src DIR --out DIR [options]

writes OUT/datalist.json with the keys "training", "validation" and "test", each
a list of {"image": ..., "label": ...}. The paths are relative to OUT, with '/'
separators, so that

  monai.data.load_decathlon_datalist("OUT/datalist.json", data_list_key="training", base_dir="OUT")

resolves them (base_dir defaults to the datalist's folder anyway). The source
files are never copied or modified; moving OUT or the source afterwards breaks
the relative paths. Every image and mask is read in full and checked before
anything is written: readable and not truncated, mask the size of its image,
mask binary (values within {0, 255} or within {0, 1}; a colour mask only if
its colour channels are equal). Any problem stops the run with one message
naming the files, and OUT is left as it was; an existing datalist is replaced
(atomically) only with --overwrite. A short summary goes to stdout, everything
else to stderr.

Datasets, and what --src must hold (as the archives unpack):
  isic2017   ISIC-2017_Training_Data/ISIC_xxxxxxx.jpg with
             ISIC-2017_Training_Part1_GroundTruth/ISIC_xxxxxxx_segmentation.png
             (the superpixel images and metadata CSV are ignored); for --split
             official also ISIC-2017_Validation_Data, ISIC-2017_Validation_Part1_GroundTruth,
             ISIC-2017_Test_v2_Data and ISIC-2017_Test_v2_Part1_GroundTruth.
  isic2018   ISIC2018_Task1-2_Training_Input/ISIC_xxxxxxx.jpg with
             ISIC2018_Task1_Training_GroundTruth/ISIC_xxxxxxx_segmentation.png
             (a copy with mask and photograph side by side in one file:
             `python -m prepare.side_by_side --src COPY --out DIR` writes this layout)
  ph2        'PH2 Dataset images', or the folder above it, holding
             IMDxxx/IMDxxx_Dermoscopic_Image/IMDxxx.bmp with
             IMDxxx/IMDxxx_lesion/IMDxxx_lesion.bmp (IMDxxx_roi folders are ignored).
  folder     images/NAME.EXT with masks/NAME.EXT, NAME_segmentation.EXT, NAME_mask.EXT
             or NAME_lesion.EXT; EXT one of png, jpg, jpeg, bmp, tif, tiff, nii, nii.gz,
             any case (the bundle reads the same files).
  synthetic  no --src: generates a seeded dermoscopy-like demo set (RGB PNG images
             in OUT/images, 0/255 PNG masks of the same name in OUT/masks).
Non-image files and hidden files are ignored. A copy that holds each mask in two
formats (PH2 copies with a .jpg beside each .bmp) needs --mask-ext to choose one.

Splits (--split):
  paper      default for isic2017 (1250/150/600 of its 2000 training images),
             isic2018 (1815/259/520 of 2594) and ph2 (all 200 for test): consecutive
             runs in sorted file-name order. The reference release took unsorted
             directory order, which differs between file systems; sorting makes the
             split the same for everyone. The folder must hold exactly that many
             images; --split-sizes TRAIN VAL TEST replaces the counts (partial archives).
  official   isic2017 only: all training images for training, the official
             validation and test folders for validation and test.
  random     default and only rule for folder and synthetic (and available for the
             others): --fractions of the images (default 0.7 0.1 0.2) in an order set
             by the SHA-256 of --seed and each file name (default seed 42; synthetic
             uses its generation seed, default 0). It depends on nothing but the names
             and the seed, so it does not change with Python or NumPy versions.

Python API: prepare.make_datalist(dataset, src, out, **options) returns a
prepare.Prepared (path, datalist, smallest and largest image) and raises
prepare.PrepareError on bad options or input; the command prints that as
'error: ...' and exits with status 1.
"""

from prepare.errors import PrepareError
from prepare.make import DATASETS, SPLITS, Prepared, make_datalist

__all__ = ["DATASETS", "SPLITS", "PrepareError", "Prepared", "make_datalist"]
