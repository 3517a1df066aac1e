import pytest

from mlops.core import analysis as a
from mlops.core.promql import check_template, render
from mlops.errors import ConfigError

ERRORS = a.MetricCheck("error-rate", "q", max=0.01, min_requests=20, requests_query="r")
LATENCY = a.MetricCheck("p95", "q", max_ratio_to_baseline=1.5, no_data=a.INCONCLUSIVE)


def seq(check, *values, requests=100.0, baseline=None):
    return [a.judge(check, v, baseline, requests) for v in values]


def test_judging_one_measurement():
    assert a.judge(ERRORS, 0.001, requests=100).verdict == a.PASS
    assert a.judge(ERRORS, 0.2, requests=100).detail == "0.2 > max 0.01"
    assert a.judge(ERRORS, 0.0, requests=5).verdict == "no-data"  # too little traffic
    assert a.judge(ERRORS, None, requests=100).verdict == "no-data"
    assert a.judge(ERRORS, float("nan"), requests=100).verdict == "no-data"
    assert a.judge(LATENCY, 0.3, baseline=0.1).verdict == a.FAIL
    assert a.judge(LATENCY, 0.12, baseline=0.1).verdict == a.PASS
    assert a.judge(LATENCY, 0.12, baseline=None).verdict == a.FAIL  # nothing to compare with


@pytest.mark.parametrize(("values", "limit", "result"), [
    ((0.0, 0.0, 0.0), 0, a.PASS),
    ((0.0, 0.5, 0.0), 1, a.PASS),            # one blip, damped
    ((0.0, 0.5, 0.5), 1, a.FAIL),            # two in a row beat a limit of one
    ((0.0, 0.0, 0.5), 1, a.INCONCLUSIVE),    # latest reading bad, within the limit: hold
    ((None, None, None), 5, a.FAIL),         # no data, policy fail: never a pass
])
def test_metric_verdicts(values, limit, result):
    assert a.metric_verdict(ERRORS, seq(ERRORS, *values), limit).result == result


def test_no_data_with_inconclusive_policy_is_never_a_pass():
    verdict = a.metric_verdict(LATENCY, seq(LATENCY, None, 0.1, baseline=0.1), 3)
    assert verdict.result == a.INCONCLUSIVE
    assert a.metric_verdict(LATENCY, [], 3).result == a.INCONCLUSIVE


def test_decision_order_and_offline_gates():
    ok = a.MetricVerdict("m", a.PASS, "fine")
    unsure = a.MetricVerdict("n", a.INCONCLUSIVE, "no data")
    bad = a.MetricVerdict("o", a.FAIL, "too slow")
    assert a.decide([ok])[0] == a.PASS
    assert a.decide([ok, unsure])[0] == a.INCONCLUSIVE
    assert a.decide([ok, unsure, bad])[0] == a.FAIL
    assert a.decide([ok], [{"gate": "accuracy-threshold", "result": "fail", "detail": "x"}])[0] == a.FAIL
    assert a.decide([]) == (a.INCONCLUSIVE, ["no metrics were analysed"])


def test_promql_templates():
    template = 'sum(rate(x{revision="{{ revision }}",ns="{{namespace}}"}[{{ interval }}]))'
    check_template(template, "q")
    out = render(template, {"revision": "cancer-predictor-00002", "namespace": "models",
                            "interval": "1m"})
    assert out == 'sum(rate(x{revision="cancer-predictor-00002",ns="models"}[1m]))'
    with pytest.raises(ConfigError, match="unknown template variable"):
        check_template("x{a='{{ pod }}'}", "q")
    with pytest.raises(ConfigError, match="unbalanced"):
        check_template("x{a='{{ revision }'}", "q")
    with pytest.raises(ConfigError, match="not a plain name"):
        render('x{r="{{ revision }}"}', {"revision": 'a"} or vector(1) #'})
    with pytest.raises(ConfigError, match="not a plain name"):
        render("x[{{ interval }}]", {"interval": "1m] or up["})


@pytest.mark.parametrize(("check", "values", "limit", "result"), [
    (ERRORS, (0.0, 0.5), 1, None),                 # one failure, tolerated: keep measuring
    (ERRORS, (0.5, 0.5), 1, a.FAIL),               # two in a row beat a limit of one
    (ERRORS, (None,), 0, a.FAIL),                  # no data counts as a failure (no_data: fail)
    (ERRORS, (None, 0.0), 3, None),                # ... and more data may still pass it
    (LATENCY, (None,), 3, a.INCONCLUSIVE),         # no_data: inconclusive can never pass now
    (LATENCY, (0.5, 0.5, None), 1, a.FAIL),        # a failure wins over a gap
])
def test_settled_only_when_no_further_measurement_could_pass(check, values, limit, result):
    verdict = a.settled(check, seq(check, *values, baseline=0.1), limit)
    assert (verdict.result if verdict else None) == result
    if verdict is not None:  # settled means final: the end of the schedule agrees
        assert a.metric_verdict(check, seq(check, *values, baseline=0.1), limit).result == result


def test_the_settled_metric_leads_the_reasons():
    cut = a.cut_short(ERRORS, 1, 5, "p95 was inconclusive")
    settled = a.MetricVerdict("p95", a.INCONCLUSIVE, "no data, so it cannot pass")
    assert cut.unfinished and cut.detail == "stopped after 1 of 5 measurements (p95 was inconclusive)"
    assert a.decide([cut, settled])[1][0] == "p95: no data, so it cannot pass"
