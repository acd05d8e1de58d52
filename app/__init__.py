"""BotSmith AI: the backend of a self-hostable chatbot builder."""
