"""moto's server, as keyshift's local AWS, with one of its Secrets Manager answers made
AWS's.

moto 5.2.5's ListSecretVersionIds reports the time of the call as every version's
CreatedDate. AWS reports each version's own creation time, and keyshift reads the dates
it times a swap by from that list. Left as it is, an emulator run would need a
GetSecretValue per version for its date (KEYSHIFT_CREATED_DATES=get-value), calls the
function never makes against AWS. So the list reports the date moto stored with each
version (whole seconds, as moto keeps them); everything else is moto's own. The contract
suite checks the answer against the in-memory model of AWS's rules.

Run as: python moto_server.py -H 127.0.0.1 -p PORT (moto_server's own arguments).
"""

import json
import sys

from moto.secretsmanager import models
from moto.server import main


def _list_secret_version_ids(self, secret_id):
    secret = self.secrets[secret_id]
    versions = [
        {
            "CreatedDate": version["createdate"],
            "VersionId": version_id,
            "VersionStages": version["version_stages"],
        }
        for version_id, version in secret.versions.items()
    ]
    return json.dumps(
        {
            "ARN": secret.secret_id,
            "Name": secret.name,
            "NextToken": "",
            "Versions": versions,
        }
    )


models.SecretsManagerBackend.list_secret_version_ids = _list_secret_version_ids

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
