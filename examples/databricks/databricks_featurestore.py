"""Use a cloudsdk server from a Databricks cluster: the driver connects, Spark executors read
the feature store with the certificates it distributed on a DBFS mount.

Usage:
    python examples/databricks/databricks_featurestore.py --host fs.example.com --project my_project \
        [--port 443] [--region us-east-2] [--trust-store ca.pem] [--cert-folder /dbfs/mnt/my_mount] \
        [--spark-master local[2] | --no-spark]

The API key is never an argument: it is read from Parameter Store with the cluster's IAM role.
Outside Databricks the script starts a local Spark session (pip install pyspark); --no-spark
runs the executors' function in this process instead. databricks_featurestore.ipynb holds the
same cells (`# %%` below) as a notebook; cells marked "script only" are left out of it.
"""

# %% [markdown]
# # cloudsdk from Databricks
#
# Before the first run:
#
# 1. **API key and role**: follow the SageMaker example (examples/sagemaker) with the IAM role of
#    the cluster's instance profile (*Advanced options* of the cluster), storing the key in
#    **Parameter Store** as the SecureString `/hopsworks/role/<ROLE>/type/api-key` and letting
#    the role `ssm:GetParameter` it. Executors run with the same role.
# 2. **Install cloudsdk** as a cluster library: *Libraries* → *Install new* → *PyPI* → `cloudsdk`.
# 3. **Mount a bucket** for the certificates, so that every node sees the files the driver writes
#    (Databricks: *Mount S3 buckets with DBFS*), e.g. at `/dbfs/mnt/my_mount`.

# %%
from pathlib import Path

from cloudsdk import featurestore as fs

HOST = "my_instance.us-east-2.compute.amazonaws.com"  # the cloudsdk server
PORT = 443
PROJECT = "my_project"
REGION = None  # the region of the parameter; None: the cluster's region
TRUST_STORE = None  # a PEM file when the server's certificate comes from a private CA
CERT_FOLDER = "/dbfs/mnt/my_mount"  # the mounted bucket

# %% script only: the command line sets the values above and chooses the Spark session
import argparse  # noqa: E402
import sys  # noqa: E402

import pandas as pd  # noqa: E402

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--host", required=True)
parser.add_argument("--port", type=int, default=PORT)
parser.add_argument("--project", required=True)
parser.add_argument("--region", default=REGION)
parser.add_argument("--trust-store", default=TRUST_STORE)
parser.add_argument("--cert-folder", default=CERT_FOLDER)
parser.add_argument("--spark-master", default=None, help="e.g. local[2]; default: Spark's")
parser.add_argument("--no-spark", action="store_true", help="run the executors' function in-process")
args = parser.parse_args()
HOST, PORT, PROJECT, REGION = args.host, args.port, args.project, args.region
TRUST_STORE, CERT_FOLDER = args.trust_store, args.cert_folder


class InProcessSpark:
    """--no-spark: `spark.range(...).mapInPandas(fn, schema).toPandas()`, run in this process."""

    def range(self, start, end, numPartitions=1):
        ids = pd.Series(range(start, end), dtype="int64")
        self.partitions = [ids[i::numPartitions] for i in range(numPartitions)]
        return self

    def mapInPandas(self, fn, schema):
        self.frames = [frame for part in self.partitions for frame in fn(iter([part.to_frame("id")]))]
        return self

    def toPandas(self):
        return pd.concat(self.frames, ignore_index=True)


spark = None
if not args.no_spark:
    try:
        from pyspark.sql import SparkSession
    except ImportError:
        print("spark: pyspark is not installed (pip install pyspark, or pass --no-spark)")
    else:
        import os

        os.environ.setdefault("PYSPARK_PYTHON", sys.executable)  # executors run this Python
        builder = SparkSession.builder.appName("cloudsdk-example").config("spark.ui.enabled", "false")
        spark = (builder.master(args.spark_master) if args.spark_master else builder).getOrCreate()
        spark.sparkContext.setLogLevel("ERROR")
        print(f"spark: {spark.version}, master {spark.sparkContext.master}")
if spark is None:
    spark = InProcessSpark()
    print("spark: none, the executors' function runs in this process")


# %% [markdown]
# ## Connect on the driver
#
# The API key comes from Parameter Store (the default `secrets_store`). `connect()` writes the
# project's client certificate, key, keystores and their password to
# `<cert_folder>/<host>/<project>/` on the mount, where every executor finds them.

# %%
conn = fs.connect(HOST, PROJECT, port=PORT, region_name=REGION, trust_store_path=TRUST_STORE,
                  cert_folder=CERT_FOLDER)
print("connected:", conn)
print("certificates in", conn.certificates.directory)
print("  ", sorted(path.name for path in Path(conn.certificates.directory).iterdir()))
print("feature groups:", fs.get_featuregroups())
n_teams = len(fs.get_featuregroup("teams_features"))

# %% [markdown]
# ## A Spark job whose executors use the certificates
#
# Each task reads the files from the mount, checks them (the client certificate is issued by
# the CA chain; the PKCS#12 keystore opens with `material_passwd`, as a JVM client would use
# `keyStore.jks`), reads the API key from Parameter Store with the cluster's role, and reads
# features over Arrow Flight with mutual TLS: the server takes the API key only together with
# a client certificate that its CA issued for this project.

# %%
def read_with_certificates(batches):
    """Runs on the executors: one call per partition, `batches` are frames of team ids."""
    from cryptography import x509
    from cryptography.hazmat.primitives.serialization import pkcs12

    import cloudsdk

    certs = Path(CERT_FOLDER) / HOST / PROJECT
    ca_chain = (certs / "ca_chain.pem").read_bytes()
    password = (certs / "material_passwd").read_bytes().strip()
    _, cert, _ = pkcs12.load_key_and_certificates((certs / "keystore.p12").read_bytes(), password)
    cert.verify_directly_issued_by(x509.load_pem_x509_certificate(ca_chain))

    # the driver's certificates on the mount; the API key from Parameter Store (the cluster's role)
    with cloudsdk.connect(HOST, PROJECT, port=PORT, region_name=REGION, cert_folder=CERT_FOLDER,
                          reuse_certificates=True) as executor_conn:
        features = executor_conn.get_feature_store().get_features(
            ["team_id", "team_budget", "average_player_rating"])
        for batch in batches:
            rows = features[features["team_id"].isin(batch["id"])]
            yield rows.assign(certificate=cert.subject.rfc4514_string())


# `spark`: the notebook's SparkSession, which Databricks defines (the script makes its own).
teams = spark.range(1, n_teams + 1, numPartitions=4)  # noqa: F821, RUF100
schema = "team_id long, team_budget double, average_player_rating double, certificate string"
result_df = teams.mapInPandas(read_with_certificates, schema).toPandas()
print(f"executors read {len(result_df)} teams, as {result_df['certificate'].unique().tolist()}")
print(result_df.sort_values("team_id").head(3).to_string(index=False))

# %%
fs.disconnect()  # closes the connection and removes the certificates from the mount
print("disconnected; certificates removed:", not (Path(CERT_FOLDER) / HOST / PROJECT).exists())
