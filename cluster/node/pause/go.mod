module fnol.local/cluster/node/pause

go 1.26.0
