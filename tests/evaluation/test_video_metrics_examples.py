"""The worked examples of docs/en/metrics.md, a hand-computed case for every key, the edge cases and the
strict inequalities of usvid.evaluation.video_metrics."""

import math
import warnings

import numpy as np
import pytest

from usvid.evaluation.video_metrics import VideoDetectionEvaluation, evaluate_video_predictions

LESION = [0.0, 0.0, 10.0, 10.0]
NO_DETS = np.zeros((0, 5))
NO_GT = np.zeros((0, 4))


def gt(*boxes):
    return np.array(boxes, dtype=float).reshape(-1, 4)


def dets(*rows):
    """Detections from (x1, y1, x2, y2, score) rows."""
    return np.array(rows, dtype=float).reshape(-1, 5)


def det(box, score):
    return list(box) + [score]


def shifted(box, dx, dy=0.0):
    return [box[0] + dx, box[1] + dy, box[2] + dx, box[3] + dy]


def assert_metrics(metrics, expected):
    for key, value in expected.items():
        if math.isnan(value):
            assert math.isnan(metrics[key]), f"{key} = {metrics[key]}, expected NaN"
        else:
            assert metrics[key] == pytest.approx(value, rel=1e-12, abs=1e-12), key


# ---------------------------------------------------------------------------------------------
# Worked examples of docs/en/metrics.md ("Worked examples")


def test_perfect_detector_scores_one_everywhere():
    rng = np.random.default_rng(0)
    ground_truths, predictions = {}, {}
    for video in range(3):
        frames_gt, frames_pred = [], []
        for frame in range(12):
            lesions = [shifted(LESION, 30 * k + frame, 5 * video) for k in range(frame % 3)]
            frames_gt.append(gt(*lesions))
            frames_pred.append(dets(*[det(b, rng.uniform(0.01, 1.0)) for b in lesions]))
        ground_truths[f"v{video}"] = frames_gt
        predictions[f"v{video}"] = frames_pred
    metrics = evaluate_video_predictions(predictions, ground_truths)
    assert_metrics(
        metrics,
        {"AP50": 1, "AP75": 1, "mAP": 1, "R@16": 1, "Pr70": 1, "Pr80": 1, "Pr90": 1, "FP70": 0, "FP80": 0, "FP90": 0},
    )
    assert all(type(value) is float for value in metrics.values())


def extra_box_videos(extra_score, every_k, num_frames=(30, 25)):
    """A perfect detector (scores 0.5) plus, in every frame whose index is a multiple of k, one
    extra box of ``extra_score`` far from any lesion."""
    ground_truths, predictions, extra = {}, {}, 0
    for video, length in enumerate(num_frames):
        frames_gt, frames_pred = [], []
        for frame in range(length):
            lesion = shifted(LESION, frame)
            rows = [det(lesion, 0.5)]
            if frame % every_k == 0:
                rows.append(det([200, 200, 220, 220], extra_score))
                extra += 1
            frames_gt.append(gt(lesion))
            frames_pred.append(dets(*rows))
        ground_truths[video] = frames_gt
        predictions[video] = frames_pred
    return predictions, ground_truths, extra


@pytest.mark.parametrize("every_k", [6, 7, 10])
def test_high_scoring_extra_boxes_are_one_sequence_each(every_k):
    predictions, ground_truths, extra = extra_box_videos(0.99, every_k)
    n = 30 + 25
    metrics = evaluate_video_predictions(predictions, ground_truths)
    # Extra boxes of one video are >= 6 frames apart: none links, each is one FP sequence.
    assert metrics["FP80"] == pytest.approx(extra / n * 1800)
    assert extra == (5 + 5 if every_k == 6 else {7: 5 + 4, 10: 3 + 3}[every_k])


def test_low_scoring_extra_boxes_rank_after_full_recall():
    predictions, ground_truths, _ = extra_box_videos(0.01, 6)
    assert evaluate_video_predictions(predictions, ground_truths)["FP80"] == 0.0


def test_extra_boxes_five_frames_apart_link_into_one_sequence():
    # The window holds the previous 5 frames (empty ones included): lag 5 links, lag 6 does not.
    predictions, ground_truths, _ = extra_box_videos(0.99, 5, num_frames=(30,))
    assert evaluate_video_predictions(predictions, ground_truths)["FP80"] == pytest.approx(1 / 30 * 1800)


def decoy_video(num_frames, decoy_moves):
    """Every frame: the lesion found by a correct box (score 0.9 down to 0.5) and a wrong box of
    score 0.999 on a decoy, either staying put or jumping far each frame."""
    frames_gt, frames_pred = [], []
    for frame in range(num_frames):
        decoy = shifted([100, 100, 120, 120], 40 * frame if decoy_moves else 0)
        frames_gt.append(gt(LESION))
        frames_pred.append(dets(det(LESION, 0.9 - 0.01 * frame), det(decoy, 0.999)))
    return {"scan": frames_pred}, {"scan": frames_gt}


def test_wrong_box_on_one_decoy_for_40_frames_is_one_sequence():
    staying = evaluate_video_predictions(*decoy_video(40, decoy_moves=False))
    jumping = evaluate_video_predictions(*decoy_video(40, decoy_moves=True))
    # The 40 correct lesion boxes form one correct sequence; the decoy adds 1, not 40.
    assert staying["FP80"] == pytest.approx(1 / 40 * 1800)
    assert jumping["FP80"] == pytest.approx(40 / 40 * 1800)


# ---------------------------------------------------------------------------------------------
# A small case computed by hand for every key


def hand_case():
    lesion_m = [50, 50, 60, 60]
    ground_truths = {
        "a": [gt(LESION), gt(LESION), NO_GT],
        "b": [gt(LESION, lesion_m), NO_GT],
    }
    predictions = {
        "a": [
            # d1 = the lesion (IoU 1); d2 IoU 50/150 = 1/3, centre (10, 5) ON the lesion border.
            dets(det(LESION, 0.9), det([5, 0, 15, 10], 0.8)),
            # d3 IoU 80/100 = 0.8 (exactly the t = 0.8 threshold).
            dets(det([0, 0, 10, 8], 0.7)),
            # d4 on tissue: no lesion in this frame.
            dets(det([20, 20, 30, 30], 0.6)),
        ],
        "b": [
            # d5 = lesion M; d6 IoU 50/100 = 0.5 exactly with the lesion.
            dets(det(lesion_m, 0.95), det([0, 0, 5, 10], 0.5)),
            NO_DETS,
        ],
    }
    return predictions, ground_truths


def test_hand_computed_case_every_key():
    metrics = evaluate_video_predictions(*hand_case())
    # Pooled order by score: d5 .95 TP, d1 .9 TP, d2 .8 FP, d3 .7 TP, d4 .6 FP, d6 .5 TP (IoU >= .5).
    # G = 4: recall .25 .5 .5 .75 .75 1; precision 1 1 2/3 3/4 3/5 2/3.
    # AP50: envelope 1 1 1 .75 .75 2/3 -> .25 * (1 + 1 + .75 + 2/3) = 41/48.
    # t in (.5, .8]: d6 becomes FP; recall .25 .5 .5 .75 .75 .75 -> .25 * (1 + 1 + .75) = 11/16.
    # t > .8: d3 becomes FP too -> .25 * (1 + 1) = 1/2.
    # mAP over t = .50 .55 ... .95: (41/48 + 6 * 11/16 + 3 * 1/2) / 10 = 311/480.
    # Pr_r = np.interp on the raw arrays; np.interp takes the LAST of the equal recalls .5, .5:
    # Pr70 = 2/3 + (3/4 - 2/3) * (.7 - .5) / .25 = 11/15, Pr80 = 3/5 + (2/3 - 3/5) * .05/.25 = 46/75,
    # Pr90 = 3/5 + (2/3 - 3/5) * .15/.25 = 16/25.
    # Thresholds: thr70 = .8 - .1 * .8 = .72, thr80 = .6 - .1 * .2 = .58, thr90 = .6 - .1 * .6 = .54.
    # thr70 keeps d5, d1, d2: all centres in a lesion (d2 on the border) -> no FP sequence.
    # thr80 and thr90 also keep d3 (linked to d1, IoU .8) and d4 (no lesion): 1 FP sequence
    # over 5 frames -> 1 / 5 * 1800 = 360.
    # R@16: d5, d1, d3, d6 match -> 4 / 4.
    assert_metrics(
        metrics,
        {
            "AP50": 41 / 48,
            "AP75": 11 / 16,
            "mAP": 311 / 480,
            "Pr70": 11 / 15,
            "Pr80": 46 / 75,
            "Pr90": 16 / 25,
            "FP70": 0.0,
            "FP80": 360.0,
            "FP90": 360.0,
            "R@16": 1.0,
            "num_videos": 2.0,
            "num_frames": 5.0,
            "num_gt": 4.0,
            "num_dets": 6.0,
        },
    )


def test_hand_case_per_video_rows_and_fp_frames():
    evaluation = VideoDetectionEvaluation(*hand_case())
    rows = {row["video_id"]: row for row in evaluation.per_video_rows(recall=0.8)}
    # thr80 = .58 keeps d1, d2, d3, d4 in "a" (matches d1, d3 of 2 lesions) and d5 in "b" (1 of 2).
    assert rows["a"] == {
        "video_id": "a",
        "frames": 3,
        "gt_boxes": 2,
        "detections": 4,
        "R@16": 1.0,
        "recall_at_r80_threshold": 1.0,
        "fp_sequences_at_r80_threshold": 1.0,
    }
    assert rows["b"]["recall_at_r80_threshold"] == 0.5 and rows["b"]["R@16"] == 1.0
    assert evaluation.fp_sequence_frames(0.58) == {"a": [2], "b": []}
    flags = evaluation.false_positive_box_flags(0.58)
    assert [f.tolist() for f in flags["a"]] == [[False, False], [False], [True]]
    assert [f.tolist() for f in flags["b"]] == [[False, False], []]
    # The one false-positive sequence: d4 alone, frame 2 of "a", centre (25, 25) on no lesion.
    assert evaluation.false_positive_sequences(0.58) == {"a": [[(2, (25.0, 25.0), False)]], "b": []}
    # At .45 d6 is kept too, its centre on a lesion: "b" still has no false-positive sequence.
    assert evaluation.false_positive_sequences(0.45) == {"a": [[(2, (25.0, 25.0), False)]], "b": []}


def test_false_positive_sequences_are_grouped_per_sequence_in_detection_order():
    a, b = [20, 20, 30, 30], [60, 60, 70, 70]  # two tissue spots, each followed over frames
    ground_truths = {"v": [gt(LESION), NO_GT, NO_GT], "w": [NO_GT]}
    predictions = {
        "v": [dets(det(LESION, 0.9), det(a, 0.8)), dets(det(b, 0.7), det(a, 0.6)), dets(det(b, 0.5))],
        "w": [dets(det(b, 0.9))],
    }
    sequences = VideoDetectionEvaluation(predictions, ground_truths).false_positive_sequences(0.1)
    # Spot a in frames 0 and 1, spot b in frames 1 and 2 (linked by IoU 1); the lesion box is correct.
    assert sequences == {
        "v": [
            [(0, (25.0, 25.0), False), (1, (25.0, 25.0), False)],
            [(1, (65.0, 65.0), False), (2, (65.0, 65.0), False)],
        ],
        "w": [[(0, (65.0, 65.0), False)]],
    }


def test_fps_scales_fp_per_minute():
    at_30 = evaluate_video_predictions(*hand_case(), fps=30.0)
    at_15 = evaluate_video_predictions(*hand_case(), fps=15.0)
    assert at_15["FP80"] == pytest.approx(at_30["FP80"] / 2) == pytest.approx(180.0)


# ---------------------------------------------------------------------------------------------
# Matching rules


def test_best_box_already_matched_makes_a_false_positive_and_ties_take_the_first_box():
    # Both lesions have IoU 90/110 with the second detection: the FIRST lesion is its best box,
    # already taken by the first detection, so it is an FP although the second lesion is free.
    first, second = [0, 0, 10, 10], [0, 2, 10, 12]
    predictions = {"v": [dets(det(first, 0.9), det([0, 1, 10, 11], 0.8))]}
    metrics = evaluate_video_predictions(predictions, {"v": [gt(first, second)]})
    assert metrics["R@16"] == 0.5
    assert metrics["AP50"] == 0.5  # TP then FP: recall .5 at precision 1
    # Listing the lesions the other way round makes the free lesion the first best box.
    swapped = evaluate_video_predictions(predictions, {"v": [gt(second, first)]})
    assert swapped["R@16"] == 1.0


def test_equal_scores_are_matched_in_input_order():
    # Two identical boxes with equal scores: the first listed takes the lesion, the second is an
    # FP; in the pooled curve the TP therefore comes first (precision 1 at recall 1).
    predictions = {"v": [dets(det(LESION, 0.5), det(LESION, 0.5))]}
    evaluation = VideoDetectionEvaluation(predictions, {"v": [gt(LESION)]})
    assert evaluation.true_positives(0.5).tolist() == [True, False]
    assert evaluation.pr_curve(0.5).precision.tolist() == [1.0, 0.5]
    assert evaluation.summary()["AP50"] == 1.0


def test_gt_matched_at_top_k_names_the_boxes_that_r16_counts():
    # Frame 0: the second lesion is only found by the 17th box; frame 1: one lesion, found.
    far = [det(shifted([100, 100, 110, 110], 20 * i), 0.9) for i in range(16)]
    other = [50, 50, 60, 60]
    predictions = {"v": [dets(det(LESION, 0.95), *far, det(other, 0.1)), dets(det(LESION, 0.5))]}
    evaluation = VideoDetectionEvaluation(predictions, {"v": [gt(LESION, other), gt(LESION)]})
    assert evaluation.gt_matched_at_top_k(16).tolist() == [True, False, True]
    assert evaluation.gt_matched_at_top_k(18).tolist() == [True, True, True]
    assert evaluation.summary()["R@16"] == pytest.approx(2 / 3)


def test_iou_equal_to_threshold_matches():
    # IoU exactly 0.75 (75 / 100) matches at t = 0.75, not at t = 0.8.
    predictions = {"v": [dets(det([0, 0, 10, 7.5], 0.9))]}
    evaluation = VideoDetectionEvaluation(predictions, {"v": [gt(LESION)]})
    assert evaluation.true_positives(0.75).tolist() == [True]
    assert evaluation.true_positives(0.8).tolist() == [False]


def test_zero_area_boxes_have_iou_zero():
    point = [5, 5, 5, 5]
    predictions = {"v": [dets(det(point, 0.9))]}
    metrics = evaluate_video_predictions(predictions, {"v": [gt(point)]})
    assert metrics["AP50"] == 0.0 and metrics["R@16"] == 0.0


def test_r16_keeps_the_16_best_boxes_with_stable_ties():
    far = [det(shifted([100, 100, 110, 110], 20 * i), 0.5) for i in range(16)]
    # The lesion box, same score, listed 17th: the stable top 16 leaves it out.
    late = {"v": [dets(*far, det(LESION, 0.5))]}
    assert evaluate_video_predictions(late, {"v": [gt(LESION)]})["R@16"] == 0.0
    # Listed 16th it is kept.
    early = {"v": [dets(*far[:15], det(LESION, 0.5), far[15])]}
    assert evaluate_video_predictions(early, {"v": [gt(LESION)]})["R@16"] == 1.0
    # A higher score moves it into the top 16 wherever it is listed.
    scored = {"v": [dets(*far, det(LESION, 0.6))]}
    assert evaluate_video_predictions(scored, {"v": [gt(LESION)]})["R@16"] == 1.0


# ---------------------------------------------------------------------------------------------
# Strict inequalities of the FP sequences


def lesion_frames_with_decoys(decoys, lesion_score=0.5):
    """One video: every frame has the lesion found by a box of ``lesion_score``; frame i adds the
    wrong boxes ``decoys[i]`` (rows x1, y1, x2, y2, score)."""
    frames_pred = [dets(det(LESION, lesion_score), *rows) for rows in decoys]
    return {"v": frames_pred}, {"v": [gt(LESION)] * len(decoys)}


def test_kept_boxes_need_a_score_strictly_above_the_threshold():
    # 5 frames, lesion boxes .9 .8 .7 .6 .5; a decoy in frame 0 ties the 4th lesion box at .6.
    # Pooled: .9 TP (.2), .8 TP (.4), .7 TP (.6), decoy .6 FP (.6), .6 TP (.8), .5 TP (1).
    # thr80 = interp(.8) = .6 exactly, and .6 > .6 is false: the decoy is not kept.
    def case(decoy_score):
        frames = [dets(det(LESION, 0.9 - 0.1 * i)) for i in range(5)]
        frames[0] = dets(det(LESION, 0.9), det([100, 100, 110, 110], decoy_score))
        return {"v": frames}, {"v": [gt(LESION)] * 5}

    evaluation = VideoDetectionEvaluation(*case(0.6))
    assert evaluation.score_threshold_at_recall(0.8) == 0.6
    assert evaluation.summary()["FP80"] == 0.0
    # A hair above .6 it is kept (and the threshold stays .6): one FP sequence in 5 frames.
    assert evaluate_video_predictions(*case(0.6 + 1e-9))["FP80"] == pytest.approx(1 / 5 * 1800)


@pytest.mark.parametrize("second_height, sequences", [(5.0, 2), (6.0, 1)])
def test_links_need_iou_strictly_above_half(second_height, sequences):
    # Decoys in frames 0 and 1: [100, 100, 110, 110] then height 5 (IoU 50/100 = .5, no link) or
    # height 6 (IoU .6, linked). The lesion boxes (score .5) set thr80 = .5, so only decoys are kept.
    decoys = [[det([100, 100, 110, 110], 0.9)], [det([100, 100, 110, 100 + second_height], 0.9)]]
    decoys += [[] for _ in range(8)]
    metrics = evaluate_video_predictions(*lesion_frames_with_decoys(decoys))
    assert metrics["FP80"] == pytest.approx(sequences / 10 * 1800)


def tracked_box_video(num_frames, frames_without_lesion):
    """Video "track": one box fixed on the lesion position in every frame (score .9) while the
    lesion is absent from ``frames_without_lesion`` frames; video "ref": 40 lesion frames found by
    boxes of score .5, so thr80 = .5 and exactly the tracked boxes are kept."""
    track_gt = [NO_GT] * frames_without_lesion + [gt(LESION)] * (num_frames - frames_without_lesion)
    predictions = {"track": [dets(det(LESION, 0.9))] * num_frames, "ref": [dets(det(LESION, 0.5))] * 40}
    return predictions, {"track": track_gt, "ref": [gt(LESION)] * 40}


def test_sequence_exactly_90_percent_correct_is_a_false_positive():
    # 9 of 10 boxes correct: 9/10 > .9 is false -> 1 FP sequence in 50 frames.
    metrics = evaluate_video_predictions(*tracked_box_video(10, 1))
    assert metrics["FP80"] == pytest.approx(1 / 50 * 1800)


def test_sequence_more_than_90_percent_correct_is_not_a_false_positive():
    # 10 of 11 boxes correct: 10/11 > .9.
    assert evaluate_video_predictions(*tracked_box_video(11, 1))["FP80"] == 0.0


def test_boxes_do_not_link_across_videos():
    # Two videos with a decoy at the same place, the first at its last frame, the second at its
    # first: 2 sequences, not 1.
    decoy = det([100, 100, 110, 110], 0.9)
    first = lesion_frames_with_decoys([[]] * 4 + [[decoy]])
    second = lesion_frames_with_decoys([[decoy]] + [[]] * 4)
    predictions = {"a": first[0]["v"], "b": second[0]["v"]}
    ground_truths = {"a": first[1]["v"], "b": second[1]["v"]}
    assert evaluate_video_predictions(predictions, ground_truths)["FP80"] == pytest.approx(2 / 10 * 1800)


# ---------------------------------------------------------------------------------------------
# Edge cases


def test_no_ground_truth_gives_nan_and_one_warning():
    predictions = {"v": [dets(det(LESION, 0.9)), NO_DETS]}
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        metrics = evaluate_video_predictions(predictions, {"v": [NO_GT, NO_GT]})
    assert len(caught) == 1 and "no boxes" in str(caught[0].message)
    for key in ("AP50", "AP75", "mAP", "Pr70", "Pr80", "Pr90", "FP70", "FP80", "FP90", "R@16"):
        assert math.isnan(metrics[key]), key
    assert metrics["num_frames"] == 2.0 and metrics["num_dets"] == 1.0 and metrics["num_gt"] == 0.0


def test_no_ground_truth_and_no_detections():
    with pytest.warns(RuntimeWarning):
        metrics = evaluate_video_predictions({"v": [NO_DETS]}, {"v": [NO_GT]})
    assert math.isnan(metrics["AP50"]) and math.isnan(metrics["FP80"])


def test_ground_truth_without_detections():
    metrics = evaluate_video_predictions({"v": [NO_DETS, NO_DETS]}, {"v": [gt(LESION), NO_GT]})
    assert_metrics(
        metrics,
        {"AP50": 0.0, "AP75": 0.0, "mAP": 0.0, "R@16": 0.0, "Pr80": math.nan, "FP80": math.nan, "FP70": math.nan},
    )


def test_recall_never_reached_gives_nan_not_the_last_precision():
    # 2 lesions, one found: recall .5 only.
    predictions = {"v": [dets(det(LESION, 0.9)), NO_DETS]}
    metrics = evaluate_video_predictions(predictions, {"v": [gt(LESION), gt(LESION)]})
    assert metrics["AP50"] == 0.5
    for key in ("Pr70", "Pr80", "Pr90", "FP70", "FP80", "FP90"):
        assert math.isnan(metrics[key]), key


def test_mismatched_frame_counts_name_the_video():
    with pytest.raises(ValueError, match="video 'clip_7': 2 prediction frames but 3 ground-truth"):
        evaluate_video_predictions({"clip_7": [NO_DETS] * 2}, {"clip_7": [NO_GT] * 3})


def test_missing_video_is_named():
    with pytest.raises(ValueError, match="videos without predictions \\['b'\\]"):
        evaluate_video_predictions({"a": [NO_DETS]}, {"a": [NO_GT], "b": [NO_GT]})


def test_bad_array_shapes_and_values_are_named():
    with pytest.raises(ValueError, match="video 'v' frame 1: prediction must be an array of shape \\(K, 5\\)"):
        evaluate_video_predictions({"v": [NO_DETS, np.zeros((1, 4))]}, {"v": [NO_GT, NO_GT]})
    with pytest.raises(ValueError, match="video 'v' frame 1: prediction row .* non-finite"):
        evaluate_video_predictions({"v": [NO_DETS, dets(det(LESION, np.nan))]}, {"v": [NO_GT, NO_GT]})
    with pytest.raises(ValueError, match="fps must be a positive"):
        evaluate_video_predictions({"v": [NO_DETS]}, {"v": [NO_GT]}, fps=0)


def test_frames_given_as_empty_lists_are_accepted():
    metrics = evaluate_video_predictions({"v": [[], [det(LESION, 0.9)]]}, {"v": [[], [LESION]]})
    assert metrics["AP50"] == 1.0 and metrics["num_frames"] == 2.0
