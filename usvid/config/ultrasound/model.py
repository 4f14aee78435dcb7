"""Config keys of the model area of the Ultrasound VID application (read by usvid/modeling)."""

from ..config import CfgNode as CN
from ..config import register_renamed_key

register_renamed_key("MODEL.ROI_BOX_HEAD.INTERVAL_PRE_TEST", "MODEL.ROI_BOX_HEAD.NUM_CONTEXT_FRAMES")


def add_model_config(cfg: CN) -> None:
    """Add the model keys to ``cfg`` in place."""
    # Backbone choice and freezing.
    cfg.MODEL.BACKBONE = CN()
    # Registered backbone builder (usvid.modeling.BACKBONE_REGISTRY).
    cfg.MODEL.BACKBONE.NAME = "build_resnet_backbone"
    # detectron2 semantics: 0 trains everything, 1 freezes the stem, k >= 2 also res2..res<k>.
    cfg.MODEL.BACKBONE.FREEZE_AT = 0

    # ResNet backbone (res4 for the detectors, res5 inside UltraDet's RoI head).
    cfg.MODEL.RESNETS = CN()
    # 18 or 34 (BasicBlock ResNets, torchvision layout).
    cfg.MODEL.RESNETS.DEPTH = 18
    # Normalisation of backbone and res5: "BN", "FrozenBN", "GN" or "" (none).
    cfg.MODEL.RESNETS.NORM = "BN"
    # Stem width; 64 is the paper's ResNet, 16-32 a CPU-sized one.
    cfg.MODEL.RESNETS.STEM_OUT_CHANNELS = 64
    # res2 width; res3 / res4 / res5 double it each (res4 = 4x, res5 = 8x).
    cfg.MODEL.RESNETS.RES2_OUT_CHANNELS = 64

    # ConvLSTM over time on res4 (state carried across the frames of a clip / a streamed video).
    cfg.MODEL.USE_LSTM = False

    # The dense (per-location) detection head: the whole head of SingleFrameFCOS, and UltraDet's
    # proposal generator.
    cfg.MODEL.DENSE_HEAD = CN()
    # Registered head class (usvid.modeling.DENSE_HEAD_REGISTRY).
    cfg.MODEL.DENSE_HEAD.NAME = "FCOSHead"

    # The FCOS head (MODEL.DENSE_HEAD.NAME "FCOSHead").
    cfg.MODEL.FCOS = CN()
    # Feature map of the FCOS head: "res4" (stride 16, the paper's) or "p3" (stride 8: res3 plus upsampled
    # res4 at res4's width, for lesions smaller than a res4 cell).
    cfg.MODEL.FCOS.IN_FEATURE = "res4"
    # Width of the conv tower shared by the classification, box and centre-ness predictors.
    cfg.MODEL.FCOS.CONV_CHANNELS = 128
    # Number of 3x3 convs (each + norm + ReLU) in that tower.
    cfg.MODEL.FCOS.NUM_CONVS = 2
    # Norm in the tower ("GN", "BN", "" ...).
    cfg.MODEL.FCOS.NORM = "GN"
    # Initial foreground probability of the classifier (focal-loss prior).
    cfg.MODEL.FCOS.PRIOR_PROB = 0.01
    # Sigmoid focal loss weight of the positive (lesion) term.
    cfg.MODEL.FCOS.FOCAL_LOSS_ALPHA = 0.25
    # Sigmoid focal loss focusing exponent (down-weights easy background locations).
    cfg.MODEL.FCOS.FOCAL_LOSS_GAMMA = 2.0
    # Positives lie within this many strides of the box centre (plus the centre cell itself).
    cfg.MODEL.FCOS.CENTER_SAMPLING_RADIUS = 1.5
    # SingleFrameFCOS test-time score threshold: low so that recall at 16 is meaningful.
    cfg.MODEL.FCOS.SCORE_THRESH_TEST = 0.01
    # SingleFrameFCOS test-time NMS IoU threshold.
    cfg.MODEL.FCOS.NMS_THRESH_TEST = 0.6
    # SingleFrameFCOS: highest-scoring locations kept before the test-time NMS.
    cfg.MODEL.FCOS.PRE_NMS_TOPK_TEST = 100
    # At most this many detections per frame (SingleFrameFCOS).
    cfg.MODEL.FCOS.DETECTIONS_PER_IMAGE = 16

    # UltraDet's proposals: the FCOS head's top boxes after NMS, a fixed number per frame.
    cfg.MODEL.PROPOSAL_GENERATOR = CN()
    # Candidates per frame fed to the temporal RoI head.
    cfg.MODEL.PROPOSAL_GENERATOR.NUM_PROPOSALS = 16
    # NMS IoU among proposals (suppressed boxes refill the list when fewer than NUM_PROPOSALS remain).
    cfg.MODEL.PROPOSAL_GENERATOR.NMS_THRESH = 0.7
    # Highest-scoring locations considered before the proposal NMS.
    cfg.MODEL.PROPOSAL_GENERATOR.PRE_NMS_TOPK = 64

    # UltraDet's RoI head: which one, its candidate labelling and test-time selection.
    cfg.MODEL.ROI_HEADS = CN()
    # Registered RoI head class (usvid.modeling.ROI_HEADS_REGISTRY): swap the temporal module here.
    cfg.MODEL.ROI_HEADS.NAME = "TemporalRoIHead"
    # A candidate is a lesion when its IoU with a ground-truth box reaches this.
    cfg.MODEL.ROI_HEADS.IOU_THRESHOLD = 0.5
    # Training: the lowest-ranked proposals of each frame are replaced by its GT boxes.
    cfg.MODEL.ROI_HEADS.PROPOSAL_APPEND_GT = True
    # Training, with PROPOSAL_APPEND_GT: also this many randomly shifted and scaled copies of each
    # GT box, so the head sees several positives per lesion and non-zero box-refinement targets.
    cfg.MODEL.ROI_HEADS.NUM_JITTERED_GT = 0
    # Training: 0 = the lesion/background cross-entropy averaged over the candidates; > 0 = focal
    # loss with this gamma, summed and divided by the number of positives (RetinaNet's
    # normalisation), so the few hard candidates (a decoy at its most lesion-like, a faint lesion)
    # outweigh the many easy background ones.
    cfg.MODEL.ROI_HEADS.FOCAL_LOSS_GAMMA = 0.0
    # Test time: score = sqrt(head lesion probability x proposal score) instead of the head's
    # probability alone (the proposal score is a second, single-frame opinion).
    cfg.MODEL.ROI_HEADS.FUSE_PROPOSAL_SCORE = False
    # UltraDet test-time score threshold: low so that recall at 16 is meaningful.
    cfg.MODEL.ROI_HEADS.SCORE_THRESH_TEST = 0.01
    # UltraDet test-time NMS IoU threshold on the refined boxes.
    cfg.MODEL.ROI_HEADS.NMS_THRESH_TEST = 0.5
    # At most this many detections per frame (UltraDet).
    cfg.MODEL.ROI_HEADS.DETECTIONS_PER_IMAGE = 16

    # UltraDet's temporal RoI head: res5 features, NTCA, relation layers, box refinement.
    cfg.MODEL.ROI_BOX_HEAD = CN()
    # Feature map the candidates are pooled from (and NTCA's context maps are built on): "res4"
    # (stride 16, the paper's) or "p3" (stride 8, as MODEL.FCOS.IN_FEATURE; one map when both say p3).
    cfg.MODEL.ROI_BOX_HEAD.IN_FEATURE = "res4"
    # RoIAlign output size on the RoI feature map (the res5 stage halves it).
    cfg.MODEL.ROI_BOX_HEAD.POOLER_RESOLUTION = 14
    # Bilinear samples per bin side; 0 = adaptive (ceil(roi size / output size)).
    cfg.MODEL.ROI_BOX_HEAD.POOLER_SAMPLING_RATIO = 0
    # Width of candidate features, NTCA and relation layers.
    cfg.MODEL.ROI_BOX_HEAD.FC_DIM = 256
    # Attention heads of NTCA and the relation layers (must divide FC_DIM).
    cfg.MODEL.ROI_BOX_HEAD.NUM_HEADS = 8
    # Relation layers over the candidates of the current and buffered frames (0 = none).
    cfg.MODEL.ROI_BOX_HEAD.NUM_RELATION_LAYERS = 2
    # Negative temporal context aggregation on/off.
    cfg.MODEL.ROI_BOX_HEAD.USE_NTCA = True
    # Channels of the per-frame context map NTCA pools from (a 1x1 conv of res4, buffered).
    cfg.MODEL.ROI_BOX_HEAD.CONTEXT_CHANNELS = 32
    # RoIAlign size of the context features NTCA pools from previous frames (kept small: it
    # runs for every candidate in every buffered frame).
    cfg.MODEL.ROI_BOX_HEAD.CONTEXT_POOLER_RESOLUTION = 4
    # Previous frames a frame sees (NTCA and relations), in training clips and in streaming.
    cfg.MODEL.ROI_BOX_HEAD.NUM_CONTEXT_FRAMES = 12
    # Video frames between two context frames: frame t sees t - STEP, t - 2 STEP, ...,
    # t - NUM_CONTEXT_FRAMES * STEP. A larger step looks further back at the same cost per frame;
    # training clips must be spaced alike (INPUT.TRAIN_FRAME_SAMPLER.FRAME_STEP, checked).
    cfg.MODEL.ROI_BOX_HEAD.CONTEXT_FRAME_STEP = 1
    # Box-delta weights (wx, wy, ww, wh) of the refinement, detectron2's defaults.
    cfg.MODEL.ROI_BOX_HEAD.BBOX_REG_WEIGHTS = (10.0, 10.0, 5.0, 5.0)
    # Smooth-L1 beta of the refinement loss (0 = L1).
    cfg.MODEL.ROI_BOX_HEAD.SMOOTH_L1_BETA = 0.0
