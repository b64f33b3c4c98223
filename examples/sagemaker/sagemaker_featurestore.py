"""Read features from a cloudsdk server in an Amazon SageMaker notebook (the Hopsworks docs' flow).

Usage:
    python examples/sagemaker/sagemaker_featurestore.py --host fs.example.com --project my_project \
        [--port 443] [--secrets-store secretsmanager|parameterstore] [--region us-east-2] \
        [--trust-store ca.pem] [--cert-folder DIR]

The API key is never an argument: it is read from AWS Secrets Manager or Parameter Store with
the notebook's IAM role. sagemaker_featurestore.ipynb holds the same cells (`# %%` below) as a
notebook; cells marked "script only" are left out of it.
"""

# %% [markdown]
# # cloudsdk from Amazon SageMaker
#
# Before the first run, once per project and role:
#
# 1. **Create an API key** on the server for a member of the project, with the scopes
#    `featurestore` and `project` (it is printed once):
#
#        cloudsdk apikey create --user alice --name sagemaker --scopes featurestore,project --data-dir /srv/cloudsdk
#
# 2. **Store it** in the region of the notebook, under the name of the notebook's IAM role `<ROLE>`:
#    * *Alternative 1*, AWS Secrets Manager: the secret `hopsworks/role/<ROLE>` holding the JSON
#      `{"api-key": "<key>"}`:
#
#          aws secretsmanager create-secret --name hopsworks/role/<ROLE> --secret-string '{"api-key": "<key>"}'
#
#    * *Alternative 2*, Parameter Store: the SecureString `/hopsworks/role/<ROLE>/type/api-key`:
#
#          aws ssm put-parameter --type SecureString --name /hopsworks/role/<ROLE>/type/api-key --value '<key>'
#
# 3. **Let the role read it**: an inline policy on `<ROLE>` allowing `secretsmanager:GetSecretValue`
#    on the secret's ARN (alternative 1) or `ssm:GetParameter` on
#    `arn:aws:ssm:<region>:<account>:parameter/hopsworks/role/<ROLE>/type/api-key`, the name
#    **without** its leading slash (alternative 2). See docs/connecting.md.
# 4. **Install cloudsdk** in the notebook: `!pip install cloudsdk`.

# %%
from cloudsdk import featurestore as fs

HOST = "my_instance.us-east-2.compute.amazonaws.com"  # the cloudsdk server
PORT = 443
PROJECT = "my_project"
SECRETS_STORE = "secretsmanager"  # alternative 1; "parameterstore" for alternative 2
REGION = None  # the region of the secret; None: the notebook's region
TRUST_STORE = None  # a PEM file when the server's certificate comes from a private CA
CERT_FOLDER = None  # where the project's client certificates go; None: a temporary folder

# %% script only: the command line sets the values above
import argparse  # noqa: E402

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--host", required=True)
parser.add_argument("--port", type=int, default=PORT)
parser.add_argument("--project", required=True)
parser.add_argument("--secrets-store", default=SECRETS_STORE, choices=["secretsmanager", "parameterstore"])
parser.add_argument("--region", default=REGION)
parser.add_argument("--trust-store", default=TRUST_STORE)
parser.add_argument("--cert-folder", default=CERT_FOLDER)
args = parser.parse_args()
HOST, PORT, PROJECT, SECRETS_STORE = args.host, args.port, args.project, args.secrets_store
REGION, TRUST_STORE, CERT_FOLDER = args.region, args.trust_store, args.cert_folder

# %% [markdown]
# ## Connect
#
# `connect()` asks AWS STS for the notebook's role, reads the API key from the secrets store,
# and fetches the project's client certificate for the data channel (Arrow Flight, mutual TLS).

# %%
print(f"connecting to {HOST}:{PORT}, project {PROJECT}, API key from {SECRETS_STORE}")
conn = fs.connect(HOST, PROJECT, port=PORT, secrets_store=SECRETS_STORE, region_name=REGION,
                  trust_store_path=TRUST_STORE, cert_folder=CERT_FOLDER)
print("connected:", conn)

# %% [markdown]
# ## Discover

# %%
print("feature stores:", fs.get_project_featurestores())
print("feature groups:", fs.get_featuregroups())
print("features:", fs.get_features_list())

# %% [markdown]
# ## Read features
#
# The query planner finds the feature groups holding the features and joins them.

# %%
features_df = fs.get_features(["team_budget", "average_attendance", "average_player_age",
                               "team_position", "sum_attendance", "average_player_rating"])
print(f"get_features: {features_df.shape[0]} rows x {features_df.shape[1]} features")
print(features_df.head(3).to_string(index=False))

# %% [markdown]
# ## SQL
#
# The documentation's Hive query runs as it is.

# %%
sql_df = fs.sql("""
    SELECT team_budget, average_position, sum_player_rating,
    average_attendance, average_player_worth, sum_player_worth,
    sum_position, sum_attendance, average_player_rating,
    team_position, sum_player_age, average_player_age
    FROM teams_features_1
    JOIN season_scores_features_1
    JOIN players_features_1
    JOIN attendances_features_1
    ON teams_features_1.`team_id`=season_scores_features_1.`team_id`
    AND teams_features_1.`team_id`=players_features_1.`team_id`
    AND teams_features_1.`team_id`=attendances_features_1.`team_id`
""")
print(f"sql: {sql_df.shape[0]} rows x {sql_df.shape[1]} columns")

# %% [markdown]
# ## Statistics

# %%
stats = fs.get_featuregroup_statistics("teams_features")
print("statistics of teams_features:", stats)
if stats is not None:
    print(stats.to_pandas()[["mean", "min", "max"]])

# %%
fs.disconnect()  # closes the connection and removes the certificates it wrote
print("disconnected")
