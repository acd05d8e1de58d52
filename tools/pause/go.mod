module botsmith.local/tools/pause

go 1.26.8
