module fnol.local/cluster/node/echo

go 1.26.0
