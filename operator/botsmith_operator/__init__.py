"""The BotSmith operator: reconciles MongoIndexSet and MongoReadPolicy resources."""

GROUP = "botsmith.io"
VERSION = "v1alpha1"
