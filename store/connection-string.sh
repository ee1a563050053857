#!/usr/bin/env bash
# Prints the connection string of the LOCAL model store: Azurite's published,
# well-known development account (devstoreaccount1). Never a production secret.
port="${FNOL_STORE_PORT:-10000}"
key="Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
echo "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey=$key;BlobEndpoint=http://${FNOL_STORE_HOST:-127.0.0.1}:$port/devstoreaccount1;"
