"""``otel-ml demo`` (or ``python -m otel_ml_demo``): the project's main job, end to end, on one machine
and nothing but the package.

What happens, in order:

1. a classifier is trained on scikit-learn's bundled breast-cancer data (no download);
2. its reference profile (features + predicted probabilities) is built with
   :func:`otel_ml.build_reference` and written into a temporary references directory;
3. the otel-ml processor starts in-process on free loopback ports with short windows, exporting its
   drift and quality gauges over OTLP/gRPC to a tiny receiver the demo runs;
4. the model's ``predict_proba`` is wrapped with :func:`otel_ml.monitor`, exporting to the processor
   every second or so;
5. production traffic is replayed: rows resampled from the data with a little noise, each from a sales
   region (the segment column), with an outlier burst, one feature shifted (drift), one small region's
   labels changing (a segment-only degradation), another feature going missing for a third of the rows
   (a data-quality incident) and a concept drift;
6. the terminal shows what an ops team would see, live, with the worst segments, and a summary of what
   was detected and when.

The exit code is 0 when everything injected was detected (the segment ranked first while the overall
performance stayed within tolerance), 1 otherwise. Everything binds
to 127.0.0.1; nothing is downloaded. ``--pipeline`` runs the same story through a real OpenTelemetry
Collector and Prometheus (see ``docs/demo.md``).

The demo is a package of its own: it uses the library's public API (:mod:`otel_ml`), the shared
names (:mod:`otel_ml.semconv`) and the processor's package, and the library never imports it.
One module per concern; ``docs/demo.md`` has the map.
"""
